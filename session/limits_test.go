package session

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestSession_AwaitRelTimeout: an inbound QoS 2 exchange older than
// AwaitRelTimeout is dropped at the next QoS 2 PUBLISH and counted, in
// the session's Stats and through RelExpired; its slot is free again and
// its packet identifier starts a new message.
func TestSession_AwaitRelTimeout(t *testing.T) {
	var reported atomic.Int64
	const timeout = 20 * time.Millisecond
	s := New("c", Options{AwaitRelTimeout: timeout, RelExpired: func(n int) { reported.Add(int64(n)) }})
	for id := uint16(1); id <= 2; id++ {
		if dup, full := s.ReceiveQoS2(id, 2); dup || full {
			t.Fatalf("receive %d: dup %v full %v", id, dup, full)
		}
	}
	if _, full := s.ReceiveQoS2(3, 2); !full {
		t.Fatal("receive maximum not applied before the timeout")
	}
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for {
		dup, full := s.ReceiveQoS2(1, 2)
		if !dup && !full {
			break // the old exchange 1 expired: this is a new message
		}
		if time.Now().After(deadline) {
			t.Fatal("exchange never expired")
		}
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(start); d > timeout+time.Second {
		t.Fatalf("expired after %v, want about %v", d, timeout)
	}
	st := s.Stats()
	if st.RelExpired != 2 || reported.Load() != 2 {
		t.Fatalf("counted %d, reported %d expired exchanges, want 2", st.RelExpired, reported.Load())
	}
	if st.InboundQoS2 != 1 {
		t.Fatalf("%d inbound exchanges, want the new one", st.InboundQoS2)
	}
	if !s.ReleaseQoS2(1) || s.ReleaseQoS2(2) {
		t.Fatal("PUBREL must release the new exchange 1 and not the expired 2")
	}
}

// TestSession_AwaitRelNoTimeout: with no timeout an exchange waits for
// its PUBREL however long it takes.
func TestSession_AwaitRelNoTimeout(t *testing.T) {
	s := New("c", Options{})
	s.ReceiveQoS2(1, 1)
	s.mu.Lock()
	s.inbound[1] -= int64(time.Hour) // as if received an hour ago
	s.mu.Unlock()
	if dup, _ := s.ReceiveQoS2(1, 1); !dup {
		t.Fatal("exchange dropped without a timeout")
	}
	if n := s.Stats().RelExpired; n != 0 {
		t.Fatalf("%d expired", n)
	}
}

// TestSession_CanSubscribe: the cap counts distinct filters, a
// replacement always fits, and 0 means no cap.
func TestSession_CanSubscribe(t *testing.T) {
	s := New("c", Options{})
	sub := func(f string) Subscription {
		var x Subscription
		x.Filter = f
		return x
	}
	for _, f := range []string{"a", "b"} {
		if !s.CanSubscribe(f, 2) {
			t.Fatalf("%q refused under the cap", f)
		}
		s.Subscribe(sub(f))
	}
	if s.CanSubscribe("c", 2) {
		t.Fatal("third filter fits under a cap of 2")
	}
	if !s.CanSubscribe("a", 2) {
		t.Fatal("replacing an existing subscription refused")
	}
	if !s.CanSubscribe("c", 0) {
		t.Fatal("cap 0 must mean no cap")
	}
	s.Unsubscribe("a")
	if !s.CanSubscribe("c", 2) {
		t.Fatal("unsubscribing did not free a place")
	}
}
