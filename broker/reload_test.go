package broker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// TestServer_SetLimitsNewConnections: new limits reach the CONNACK of the
// next connection and are enforced on it, while a connection made before
// keeps what its CONNACK said.
func TestServer_SetLimitsNewConnections(t *testing.T) {
	s, addr := newTestBroker(t, testOptions())
	before, ack := connectRaw(t, addr, &packet.Connect{ClientID: "before", CleanStart: true, KeepAlive: 60, Version: packet.V5})
	if ack.Properties.ReceiveMaximum != 32 || ack.Properties.MaximumPacketSize != 1<<20 {
		t.Fatalf("CONNACK before the change: %+v", ack.Properties)
	}

	l := s.Limits()
	l.MaxPacketSize = 1000
	l.MaxInflight = 8
	l.MaxKeepAlive = 30
	if got := s.SetLimits(l); got.MaxPacketSize != 1000 || got.MaxInflight != 8 || got.MaxKeepAlive != 30 {
		t.Fatalf("SetLimits applied %+v", got)
	}
	after, ack := connectRaw(t, addr, &packet.Connect{ClientID: "after", CleanStart: true, KeepAlive: 60, Version: packet.V5})
	p := ack.Properties
	if p.ReceiveMaximum != 8 || p.MaximumPacketSize != 1000 || !p.Present.Has(packet.PropServerKeepAlive) || p.ServerKeepAlive != 30 {
		t.Fatalf("CONNACK after the change: %+v", p)
	}

	// 2000 bytes: over the new limit, within the old one.
	big := &packet.Publish{Topic: "big", QoS: 1, PacketID: 1, Payload: bytes.Repeat([]byte{'x'}, 2000)}
	if r := before.publishAck(big); r != packet.NoMatchingSubscribers {
		t.Fatalf("connection made before the change: PUBACK %v", r)
	}
	after.send(big)
	after.expectDisconnect(packet.PacketTooLarge)
}

// TestServer_SetLimitsInflightAndQueueQoS0: MaxInflight can rise above
// its value at New, for the Receive Maximum of new connections, and
// QueueQoS0 changes with a store too.
func TestServer_SetLimitsInflightAndQueueQoS0(t *testing.T) {
	s, addr := newTestBroker(t, testOptions())
	l := s.Limits()
	l.MaxInflight = 100
	if got := s.SetLimits(l); got.MaxInflight != 100 {
		t.Fatalf("MaxInflight applied %d, want 100", got.MaxInflight)
	}
	_, ack := connectRaw(t, addr, &packet.Connect{ClientID: "c", CleanStart: true, Version: packet.V5})
	if ack.Properties.ReceiveMaximum != 100 {
		t.Fatalf("Receive Maximum %d, want 100", ack.Properties.ReceiveMaximum)
	}

	ds := newDurableBroker(t)
	l = ds.Limits()
	l.QueueQoS0 = !l.QueueQoS0
	if got := ds.SetLimits(l); got.QueueQoS0 != l.QueueQoS0 || ds.limits().QueueQoS0 != l.QueueQoS0 {
		t.Fatal("QueueQoS0 not changed on a server with a store")
	}
}

// newDurableBroker returns a server with a store in a temporary directory,
// not listening.
func newDurableBroker(t *testing.T) *Server {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Store = st
	s := New(o)
	t.Cleanup(func() {
		s.Close(context.Background())
		st.Close()
	})
	return s
}

// TestServer_SetLimitsQueues: a lowered queue cap applies to an existing
// offline session at its next delivery.
func TestServer_SetLimitsQueues(t *testing.T) {
	s, addr := newTestBroker(t, testOptions())
	sub := dialRaw(t, addr, packet.V311)
	sub.mustConnect("queued", false)
	sub.subscribe(1, packet.Subscription{Filter: "q/#", QoS: 1})
	sub.disconnect()
	waitOffline(t, s, "queued")

	l := s.Limits()
	l.MaxQueued = 2
	s.SetLimits(l)
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("pub", true)
	for i := range 5 {
		pub.publishAck(&packet.Publish{Topic: "q/1", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
	}
	sub = dialRaw(t, addr, packet.V311)
	sub.mustConnect("queued", false)
	got := sub.recvPublishes(2)
	sub.expectNothing(200 * time.Millisecond)
	if got[0].Payload[0] != 0 || got[1].Payload[0] != 1 {
		t.Fatalf("queued %v, want the first two", got)
	}
	if d := s.Stats().PublishDropped; d != 3 {
		t.Fatalf("dropped %d, want 3", d)
	}
}

// TestServer_SetListenerLimits: a lowered listener cap refuses the next
// connection over it; connections already there stay.
func TestServer_SetListenerLimits(t *testing.T) {
	s := New(testOptions())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ServeListener(ln, ListenerOptions{}) }()
	t.Cleanup(func() {
		s.Close(context.Background())
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	addr := ln.Addr().String()
	first := dialRaw(t, addr, packet.V311)
	first.mustConnect("first", true)
	second := dialRaw(t, addr, packet.V311)
	second.mustConnect("second", true)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if !s.SetListenerLimits(ln, 2, 0) {
			return errors.New("listener not served yet")
		}
		return nil
	})
	third := dialRaw(t, addr, packet.V311)
	third.send(&packet.Connect{ClientID: "third", CleanStart: true, Version: packet.V311, ProtocolName: "MQTT"})
	third.expectClosed()
	if n := s.Stats().Limits.ConnectionsRefused; n != 1 {
		t.Fatalf("refused %d, want 1", n)
	}
	first.ping()
	second.ping()

	s.SetListenerLimits(ln, 0, 0)
	dialRaw(t, addr, packet.V311).mustConnect("fourth", true)
	if s.SetListenerLimits(fakeListener{}, 1, 1) {
		t.Fatal("SetListenerLimits found a listener that is not served")
	}
}

type fakeListener struct{ net.Listener }

// TestServer_SetLimitsSysInterval: $SYS publishing starts, and stops,
// when SysInterval changes.
func TestServer_SetLimitsSysInterval(t *testing.T) {
	s, addr := newTestBroker(t, testOptions()) // SysInterval 0
	c := dialRaw(t, addr, packet.V311)
	c.mustConnect("sys", true)
	c.subscribe(1, packet.Subscription{Filter: "$SYS/broker/uptime"})
	c.expectNothing(100 * time.Millisecond)

	l := s.Limits()
	l.SysInterval = time.Second
	s.SetLimits(l)
	if p := c.recvPublish(); p.Topic != "$SYS/broker/uptime" {
		t.Fatalf("got %s", p.Topic)
	}
	l.SysInterval = 0
	s.SetLimits(l)
	// A tick may have been under way; after it, nothing for over a period.
	c.tryRecv(300 * time.Millisecond)
	c.expectNothing(1200 * time.Millisecond)
}
