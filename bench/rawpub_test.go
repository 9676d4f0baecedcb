package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// fakeBroker accepts one v5 client, answers its CONNACK with Receive
// Maximum recvMax and acknowledges its QoS 1 PUBLISHes, the n-th (from
// 1) with reason(n). It reports the most PUBLISHes it ever had
// unacknowledged; it acknowledges only once recvMax are outstanding or
// the client flushes less (it waits for one more read).
func fakeBroker(t *testing.T, recvMax uint16, reason func(n int) packet.Reason) (addr string, maxOut <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan int, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br, bw := bufio.NewReader(nc), bufio.NewWriter(nc)
		if _, err := packet.Read(br, packet.V5, 0); err != nil {
			return
		}
		ca := &packet.Connack{}
		ca.Properties.Present.Add(packet.PropReceiveMaximum)
		ca.Properties.ReceiveMaximum = recvMax
		bw.Write(packet.Append(nil, ca, packet.V5))
		bw.Flush()
		var pending []uint16
		most, n := 0, 0
		defer func() { out <- most }()
		for {
			pk, err := packet.Read(br, packet.V5, 0)
			if err != nil {
				return
			}
			p, ok := pk.(*packet.Publish)
			if !ok {
				return // DISCONNECT
			}
			pending = append(pending, p.PacketID)
			most = max(most, len(pending))
			if br.Buffered() > 0 && len(pending) < int(recvMax) {
				continue
			}
			for _, id := range pending {
				n++
				bw.Write(packet.Append(nil, &packet.Puback{PacketID: id, Reason: reason(n)}, packet.V5))
			}
			pending = pending[:0]
			bw.Flush()
		}
	}()
	return ln.Addr().String(), out
}

// The raw publisher keeps no more publishes in flight than the broker's
// Receive Maximum, counts a failed PUBACK as an error and the others as
// sent, and records the latency of each.
func TestRawPub_WindowAndFailedAcks(t *testing.T) {
	addr, maxOut := fakeBroker(t, 3, func(n int) packet.Reason {
		if n%10 == 0 {
			return packet.QuotaExceeded
		}
		return packet.Success
	})
	code, out, errb := runBench(t, "pub", "-h", addr, "-json", "-q", "1", "-n", "100", "-inflight", "50", "-s", "16")
	if code != 1 {
		t.Fatalf("exit %d, want 1 for the failed PUBACKs: %s%s", code, out, errb)
	}
	r := decode[PubResult](t, out)
	if r.Sent != 90 || r.Errors != 10 || r.AckLatency == nil || r.AckLatency.Count != 100 {
		t.Errorf("sent %d errors %d latency %+v: want 90 sent, 10 errors, 100 latencies", r.Sent, r.Errors, r.AckLatency)
	}
	if want := fmt.Sprintf("reason code 0x%02x", byte(packet.QuotaExceeded)); !strings.Contains(r.FirstErr, want) {
		t.Errorf("first error %q does not say %q", r.FirstErr, want)
	}
	if m := <-maxOut; m > 3 || m < 1 {
		t.Errorf("%d publishes in flight at most, want 1 to 3 (Receive Maximum 3)", m)
	}
}

// A connection the broker drops mid-run ends the run with an error, and
// the reader with it: nothing records acknowledgements after run returns.
func TestRawPub_ConnectionDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if _, err := packet.Read(br, packet.V5, 0); err != nil {
			return
		}
		nc.Write(packet.Append(nil, &packet.Connack{}, packet.V5))
		for range 5 {
			pk, err := packet.Read(br, packet.V5, 0)
			if err != nil {
				return
			}
			nc.Write(packet.Append(nil, &packet.Puback{PacketID: pk.(*packet.Publish).PacketID}, packet.V5))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var acked atomic.Int64
	p, err := dialRaw(ctx, clientOptions{Addr: ln.Addr().String(), ClientID: "drop"}, 3, func(error) { acked.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.disconnect()
	if err := p.run(ctx, 1, "t", 16, false, 100, time.Now(), time.Millisecond); err == nil {
		t.Fatal("run ended without an error")
	}
	select {
	case <-p.done:
	default:
		t.Fatal("the reader still runs after run returned")
	}
	if n := acked.Load(); n != 5 || p.acks.n != 5 {
		t.Errorf("%d acknowledged, %d latencies: want 5", n, p.acks.n)
	}
}
