package broker

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// A subscriber that subscribes while retained messages keep being
// published on its topic gets each value at most once and in order: the
// retained snapshot and live routing must not overlap or cross.
func TestSubscribe_RetainedSnapshotRacesPublish(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("racer-pub", true)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; !stop.Load() && i < 200000; i++ {
			pub.sendRaw(packet.Append(nil, &packet.Publish{Topic: "race/t", Retain: true, Payload: []byte(strconv.Itoa(i))}, packet.V311))
		}
	}()
	defer func() { stop.Store(true); <-done }()

	for round := 0; round < 20; round++ {
		sub := dialRaw(t, addr, packet.V311)
		sub.mustConnect("racer-sub", true)
		sub.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "race/#"}}})
		last, got := 0, 0
		deadline := time.Now().Add(5 * time.Second)
		for got < 50 && time.Now().Before(deadline) {
			pk := sub.recv()
			p, ok := pk.(*packet.Publish)
			if !ok {
				continue // the SUBACK
			}
			n, err := strconv.Atoi(string(p.Payload))
			if err != nil {
				t.Fatalf("payload %q", p.Payload)
			}
			if n <= last {
				t.Fatalf("round %d: value %d after %d (retain=%v): duplicate or out of order", round, n, last, p.Retain)
			}
			last = n
			got++
		}
		sub.nc.Close()
	}
}
