package session

import "testing"

func TestInflightList_OutOfOrderAcksAndCompaction(t *testing.T) {
	var l inflightList
	const n = 1000
	for id := uint16(1); id <= n; id++ {
		l.add(Delivery{PacketID: id, State: AwaitPuback})
	}
	// Acknowledge every odd identifier, then the even ones below 900:
	// holes in the middle, then a long run of them at the front.
	for id := uint16(1); id <= n; id += 2 {
		if !l.remove(id) {
			t.Fatalf("remove %d", id)
		}
	}
	for id := uint16(2); id < 900; id += 2 {
		l.remove(id)
	}
	if l.remove(3) {
		t.Fatal("removed twice")
	}
	if l.len() != 51 { // 900, 902, ... 1000
		t.Fatalf("len %d, want 51", l.len())
	}
	if l.head != 0 && l.head*2 > len(l.list) {
		t.Fatalf("not compacted: head %d of %d", l.head, len(l.list))
	}
	// Every survivor is still found, and a new connection gets them in
	// send order.
	for id := uint16(900); id <= n; id += 2 {
		if d := l.get(id); d == nil || d.PacketID != id {
			t.Fatalf("get %d after compaction: %+v", id, d)
		}
	}
	l.rewind()
	want := uint16(900)
	for {
		d, ok := l.nextUnsent()
		if !ok {
			break
		}
		if d.PacketID != want {
			t.Fatalf("resend order: got %d, want %d", d.PacketID, want)
		}
		want += 2
	}
	if want != n+2 {
		t.Fatalf("resend stopped at %d", want)
	}
	if _, ok := l.nextUnsent(); ok {
		t.Fatal("sent entries returned again")
	}
}
