package session

import (
	"testing"
	"time"
)

// A writer running between Reserve and Attach (to send CONNACK) must not
// take queued messages: Attach would send them again, marked Dup.
func TestSession_NothingBeforeAttachWhenReserved(t *testing.T) {
	s := New("c", Options{})
	s.Reserve(s)
	if !s.Deliver(Delivery{Msg: msg("t", 1), QoS: 1}) {
		t.Fatal("deliver refused")
	}
	now := time.Now().UnixNano()
	if got := s.Next(s, nil, now, 100); len(got) != 0 {
		t.Fatalf("Next while reserved = %d deliveries, want none", len(got))
	}
	attach(s, 65535)
	got := s.Next(s, nil, now, 100)
	if len(got) != 1 || got[0].Dup {
		t.Fatalf("Next after Attach = %+v, want one first delivery", got)
	}
	if again := s.Next(s, nil, now, 100); len(again) != 0 {
		t.Fatalf("sent twice: %+v", again)
	}
}
