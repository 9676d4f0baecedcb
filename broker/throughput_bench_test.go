package broker

import (
	"bufio"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// benchPubSub measures one publisher to one subscriber over loopback
// through a real broker: b.N messages of 64 bytes at qos.
func benchPubSub(b *testing.B, qos byte) { benchPubSubWith(b, qos, testOptions()) }

// benchPubSubWith is benchPubSub on a broker with opts.
func benchPubSubWith(b *testing.B, qos byte, opts Options) {
	opts.MaxQueued = 1 << 20
	opts.MaxInflight = 65535
	_, addr := newTestBroker(b, opts)
	sub := dialRaw(b, addr, packet.V311)
	sub.mustConnect("bsub", true)
	sub.subscribe(1, packet.Subscription{Filter: "bench/#", QoS: qos})
	pub := dialRaw(b, addr, packet.V311)
	pub.mustConnect("bpub", true)
	sub.nc.SetReadDeadline(time.Time{})
	pub.nc.SetReadDeadline(time.Time{})

	done := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(sub.nc, 64<<10)
		var acks []byte
		for got := 0; got < b.N; {
			pk, err := packet.Read(br, packet.V311, 0)
			if err != nil {
				done <- err
				return
			}
			if p, ok := pk.(*packet.Publish); ok {
				got++
				if p.QoS == 1 {
					acks = packet.Append(acks, &packet.Puback{PacketID: p.PacketID}, packet.V311)
					if br.Buffered() == 0 || len(acks) > 4096 {
						sub.nc.Write(acks)
						acks = acks[:0]
					}
				}
			}
		}
		done <- nil
	}()
	go func() { // drain PUBACKs
		br := bufio.NewReaderSize(pub.nc, 64<<10)
		for {
			if _, err := packet.Read(br, packet.V311, 0); err != nil {
				return
			}
		}
	}()
	payload := make([]byte, 64)
	bw := bufio.NewWriterSize(pub.nc, 64<<10)
	var buf []byte
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = packet.Append(buf[:0], &packet.Publish{Topic: "bench/a", QoS: qos, PacketID: uint16(i%65535 + 1), Payload: payload}, packet.V311)
		bw.Write(buf)
		if i%64 == 63 {
			bw.Flush()
		}
	}
	bw.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkServer_QoS0OneToOne(b *testing.B) { benchPubSub(b, 0) }
func BenchmarkServer_QoS1OneToOne(b *testing.B) { benchPubSub(b, 1) }
