package session

import (
	"testing"
	"time"
)

func msg(topic string, qos byte) *Message {
	return &Message{Topic: topic, Payload: []byte("p"), QoS: qos}
}

func attach(s *Session, recvMax int) *int {
	wakes := new(int)
	s.Attach(s, recvMax, func() { *wakes++ })
	return wakes
}

func TestSession_WindowAndPacketIDs(t *testing.T) {
	s := New("c", Options{MaxInflight: 2})
	attach(s, 65535)
	for i := 0; i < 4; i++ {
		if !s.Deliver(Delivery{Msg: msg("t", 1), QoS: 1}) {
			t.Fatal("deliver refused")
		}
	}
	now := time.Now().UnixNano()
	got := s.Next(s, nil, now, 100)
	if len(got) != 2 {
		t.Fatalf("window 2: Next returned %d", len(got))
	}
	if got[0].PacketID == 0 || got[0].PacketID == got[1].PacketID || got[0].State != AwaitPuback {
		t.Fatalf("packet IDs %d %d state %v", got[0].PacketID, got[1].PacketID, got[0].State)
	}
	if more := s.Next(s, nil, now, 100); len(more) != 0 {
		t.Fatalf("window full but Next returned %d", len(more))
	}
	if !s.Puback(got[0].PacketID) || s.Puback(got[0].PacketID) {
		t.Fatal("Puback must succeed once")
	}
	if more := s.Next(s, nil, now, 100); len(more) != 1 {
		t.Fatalf("one slot free, Next returned %d", len(more))
	}
}

func TestSession_ClientReceiveMaximumCapsWindow(t *testing.T) {
	s := New("c", Options{MaxInflight: 10})
	attach(s, 1)
	s.Deliver(Delivery{Msg: msg("t", 2), QoS: 2})
	s.Deliver(Delivery{Msg: msg("t", 2), QoS: 2})
	if got := s.Next(s, nil, 0, 100); len(got) != 1 {
		t.Fatalf("receive maximum 1: got %d", len(got))
	}
}

func TestSession_QoS2Flow(t *testing.T) {
	s := New("c", Options{})
	attach(s, 0)
	s.Deliver(Delivery{Msg: msg("t", 2), QoS: 2})
	d := s.Next(s, nil, 0, 10)[0]
	if d.State != AwaitPubrec {
		t.Fatalf("state %v", d.State)
	}
	if s.Pubcomp(d.PacketID) {
		t.Fatal("PUBCOMP before PUBREC accepted")
	}
	if !s.Pubrec(d.PacketID, false) || !s.Pubrec(d.PacketID, false) {
		t.Fatal("PUBREC (and its repeat) must be accepted")
	}
	if !s.Pubcomp(d.PacketID) {
		t.Fatal("PUBCOMP refused")
	}
	if st := s.Stats(); st.Inflight != 0 {
		t.Fatalf("inflight %d after PUBCOMP", st.Inflight)
	}
	// A failed PUBREC ends the exchange.
	s.Deliver(Delivery{Msg: msg("t", 2), QoS: 2})
	d = s.Next(s, nil, 0, 10)[0]
	if !s.Pubrec(d.PacketID, true) || s.Stats().Inflight != 0 {
		t.Fatal("failed PUBREC did not end the exchange")
	}
}

func TestSession_ResendOnReattachWithDup(t *testing.T) {
	s := New("c", Options{})
	attach(s, 0)
	s.Deliver(Delivery{Msg: msg("a", 1), QoS: 1})
	s.Deliver(Delivery{Msg: msg("b", 2), QoS: 2})
	first := s.Next(s, nil, 0, 10)
	s.Pubrec(first[1].PacketID, false)
	s.Detach(s)
	s.Deliver(Delivery{Msg: msg("c", 1), QoS: 1}) // queued while offline
	attach(s, 0)
	got := s.Next(s, nil, 0, 10)
	if len(got) != 3 {
		t.Fatalf("got %d deliveries, want 2 resent + 1 queued", len(got))
	}
	if !got[0].Dup || got[0].PacketID != first[0].PacketID || got[0].Msg.Topic != "a" {
		t.Fatalf("resend 0: %+v", got[0])
	}
	if got[1].State != AwaitPubcomp || got[1].PacketID != first[1].PacketID {
		t.Fatalf("resend 1 must be a PUBREL: %+v", got[1])
	}
	if got[2].Dup || got[2].Msg.Topic != "c" {
		t.Fatalf("queued: %+v", got[2])
	}
}

func TestSession_OfflineQoS0AndQueueCap(t *testing.T) {
	s := New("c", Options{MaxQueued: 2})
	if s.Deliver(Delivery{Msg: msg("t", 0), QoS: 0}) {
		t.Fatal("QoS 0 queued for an offline session")
	}
	s.Deliver(Delivery{Msg: msg("t", 1), QoS: 1})
	s.Deliver(Delivery{Msg: msg("t", 1), QoS: 1})
	if s.Deliver(Delivery{Msg: msg("t", 1), QoS: 1}) {
		t.Fatal("queue cap not applied")
	}
	if st := s.Stats(); st.Queued != 2 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	q0 := New("q0", Options{QueueQoS0: true})
	if !q0.Deliver(Delivery{Msg: msg("t", 0), QoS: 0}) {
		t.Fatal("QueueQoS0 did not queue")
	}
}

func TestSession_ExpiredMessagesDiscarded(t *testing.T) {
	s := New("c", Options{})
	attach(s, 0)
	m := msg("t", 1)
	m.Expires = 100
	s.Deliver(Delivery{Msg: m, QoS: 1})
	if got := s.Next(s, nil, 200, 10); len(got) != 0 {
		t.Fatalf("expired message returned: %+v", got)
	}
	if s.Stats().Expired != 1 {
		t.Fatal("expiry not counted")
	}
}

func TestSession_InboundQoS2(t *testing.T) {
	s := New("c", Options{})
	if dup, full := s.ReceiveQoS2(7, 1); dup || full {
		t.Fatal("first receive")
	}
	if dup, _ := s.ReceiveQoS2(7, 1); !dup {
		t.Fatal("resent PUBLISH not recognised")
	}
	if _, full := s.ReceiveQoS2(8, 1); !full {
		t.Fatal("receive maximum not applied")
	}
	if !s.ReleaseQoS2(7) || s.ReleaseQoS2(7) {
		t.Fatal("PUBREL must release once")
	}
}

func TestMessage_RemainingExpiryRoundsUp(t *testing.T) {
	m := &Message{Expires: int64(10*time.Second) + 1}
	if left, ok := m.RemainingExpiry(int64(time.Second)); !ok || left != 10 {
		t.Fatalf("left %d %v", left, ok)
	}
	if _, ok := (&Message{}).RemainingExpiry(0); ok {
		t.Fatal("message without expiry has one")
	}
}

func TestRegistry_OpenCleanReplaces(t *testing.T) {
	r := NewRegistry(Options{})
	a, present, _ := r.Open("x", false)
	if present {
		t.Fatal("new session present")
	}
	b, present, _ := r.Open("x", false)
	if !present || a != b {
		t.Fatal("resume did not return the session")
	}
	c, present, replaced := r.Open("x", true)
	if present || c == a || replaced != a {
		t.Fatal("clean start did not replace")
	}
	if r.Remove(a) || !r.Remove(c) || r.Len() != 0 {
		t.Fatal("Remove")
	}
}

func TestSession_NextOnlyForTheAttachedOwner(t *testing.T) {
	s := New("c", Options{})
	old, cur := new(int), new(int)
	s.Attach(old, 0, func() {})
	s.Attach(cur, 0, func() {}) // taken over
	s.Deliver(Delivery{Msg: msg("t", 1), QoS: 1})
	if got := s.Next(old, nil, 0, 10); len(got) != 0 {
		t.Fatalf("a replaced connection took %d deliveries", len(got))
	}
	if got := s.Next(cur, nil, 0, 10); len(got) != 1 {
		t.Fatalf("the attached connection got %d deliveries, want 1", len(got))
	}
}
