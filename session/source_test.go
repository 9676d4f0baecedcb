package session

import (
	"slices"
	"testing"

	"gatemq/boltstore"
)

func ref(seq uint64) boltstore.RecordID { return boltstore.RecordID{Seq: seq} }

// The broker's readers of the store find the deliveries they handed a
// session by source: queued, in flight, and past PUBREC.
func TestSession_Sources(t *testing.T) {
	s := New("c", Options{MaxInflight: 4})
	if s.Room() != 0 {
		t.Fatalf("room %d while offline, want 0", s.Room())
	}
	attach(s, 3)
	s.Enqueue(Delivery{Msg: msg("a", 2), QoS: 2, Ref: ref(1), Src: FromQueue})
	s.Enqueue(Delivery{Msg: msg("a", 1), QoS: 1, Ref: ref(2), Src: FromPubsub})
	s.Enqueue(Delivery{Msg: msg("a", 1), QoS: 1, Ref: ref(3), Src: FromQueue})
	s.Enqueue(Delivery{Msg: msg("a", 1), QoS: 1, Ref: ref(4), Src: FromStream})
	s.Enqueue(Delivery{Msg: msg("a", 1), QoS: 1, Ref: ref(5), Src: FromQueue})
	if r := s.Room(); r != 3-5 {
		t.Fatalf("room %d, want window 3 less 5 queued", r)
	}
	sent := s.Next(s, nil, 0, 2) // refs 1 (QoS 2) and 2 in flight
	if len(sent) != 2 {
		t.Fatalf("sent %d", len(sent))
	}
	if got, src, ok := s.InflightRef(sent[0].PacketID); !ok || got != ref(1) || src != FromQueue {
		t.Fatalf("InflightRef = %v %v %v", got, src, ok)
	}
	if _, _, ok := s.InflightRef(999); ok {
		t.Fatal("InflightRef of an unknown packet ID")
	}
	if got := s.RefsFrom(FromQueue, true); !slices.Equal(got, []boltstore.RecordID{ref(3), ref(5), ref(1)}) {
		t.Fatalf("queue refs %v", got)
	}
	s.Pubrec(sent[0].PacketID, false) // received: done for a reader that counts PUBREC
	if got := s.RefsFrom(FromQueue, false); !slices.Equal(got, []boltstore.RecordID{ref(3), ref(5)}) {
		t.Fatalf("queue refs not received %v", got)
	}
	back := s.TakeQueued(FromQueue)
	if len(back) != 2 || back[0].Ref != ref(3) || back[1].Ref != ref(5) {
		t.Fatalf("TakeQueued = %+v", back)
	}
	if got := s.RefsFrom(FromStream, true); !slices.Equal(got, []boltstore.RecordID{ref(4)}) {
		t.Fatalf("the rest of the queue: %v", got)
	}
	if r := s.Room(); r != 3-2-1 {
		t.Fatalf("room %d, want window 3 less 2 in flight and 1 queued", r)
	}
	if n := len(s.Next(s, nil, 0, 10)); n != 1 {
		t.Fatalf("Next after TakeQueued: %d, want the one left", n)
	}
	s.SetOffline("state")
	if s.Offline() != "state" {
		t.Fatal("Offline")
	}
}
