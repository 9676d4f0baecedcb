package boltstore

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"
)

// syncDone returns a done callback and a wait for it.
func syncDone(t *testing.T) (func(error), func()) {
	t.Helper()
	errc := make(chan error, 1)
	return func(err error) { errc <- err }, func() {
		t.Helper()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestStore_QueueState(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	st, err := s.LoadQueue("jobs/#")
	if err != nil || st.Exists || len(st.Entries) != 0 || len(st.Indexed) != 0 {
		t.Fatalf("new queue: %+v, %v", st, err)
	}
	a1 := appendSync(t, s, "p", "jobs/a", "1")
	a2 := appendSync(t, s, "p", "jobs/a", "2")
	b1 := appendSync(t, s, "q", "jobs/b", "3")

	done, wait := syncDone(t)
	s.SetQueueIndex("jobs/#", map[StreamKey]uint64{a1.StreamKey: 0}, done)
	wait()
	done, wait = syncDone(t)
	s.QueueAdd("jobs/#", []RecordID{a1, a2, b1}, done)
	wait()
	// An index position never goes back.
	done, wait = syncDone(t)
	s.QueueAdd("jobs/#", []RecordID{a1}, done)
	wait()
	// Another queue, whose name extends this one's, stays apart.
	done, wait = syncDone(t)
	s.QueueAdd("jobs/#/x", []RecordID{b1}, done)
	wait()
	done, wait = syncDone(t)
	s.QueueRemove("jobs/#", []RecordID{a1}, done)
	wait()

	s.Close()
	s = openTest(t, dir, nil)
	st, err = s.LoadQueue("jobs/#")
	if err != nil {
		t.Fatal(err)
	}
	want := QueueState{Exists: true, Indexed: map[StreamKey]uint64{a1.StreamKey: a2.Seq, b1.StreamKey: b1.Seq},
		Entries: []RecordID{a2, b1}}
	slices.SortFunc(want.Entries, func(x, y RecordID) int { return bytes.Compare(x.Bytes(), y.Bytes()) })
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("after restart: %+v\nwant %+v", st, want)
	}
	// A new index replaces the old one: dropped streams are forgotten.
	done, wait = syncDone(t)
	s.SetQueueIndex("jobs/#", map[StreamKey]uint64{b1.StreamKey: 7}, done)
	wait()
	if st, _ = s.LoadQueue("jobs/#"); !reflect.DeepEqual(st.Indexed, map[StreamKey]uint64{b1.StreamKey: 7}) || !st.Exists {
		t.Fatalf("index after SetQueueIndex: %+v", st)
	}
	if other, _ := s.LoadQueue("jobs/#/x"); other.Exists || !reflect.DeepEqual(other.Entries, []RecordID{b1}) {
		t.Fatalf("other queue: %+v", other)
	}
}

func TestStore_Positions(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	s := openTest(t, dir, &Options{Now: clock})
	if pos, known, err := s.LoadPositions("c"); err != nil || known || len(pos) != 0 {
		t.Fatalf("unknown client: %v, %v, %v", pos, known, err)
	}
	a := appendSync(t, s, "p", "news/a", "1")
	b := appendSync(t, s, "p", "news/b", "1")
	put := func(id string, pos map[StreamKey]uint64) {
		t.Helper()
		done, wait := syncDone(t)
		s.PutPositions(id, pos, done)
		wait()
	}
	put("c", map[StreamKey]uint64{a.StreamKey: 1, b.StreamKey: 0})
	put("cd", map[StreamKey]uint64{a.StreamKey: 9})
	put("c", map[StreamKey]uint64{b.StreamKey: 1}) // replaced as a whole
	now = now.Add(time.Hour)
	put("e", nil) // known, with no position yet
	// A stream key ending in a zero byte is no client marker.
	put("f", map[StreamKey]uint64{{Site: a.Site, Stream: 256}: 3})
	s.Close()
	s = openTest(t, dir, &Options{Now: clock})
	check := func(id string, want map[StreamKey]uint64, wantKnown bool) {
		t.Helper()
		pos, known, err := s.LoadPositions(id)
		if err != nil || known != wantKnown || !reflect.DeepEqual(pos, want) {
			t.Fatalf("positions of %s: %v known %v, %v; want %v known %v", id, pos, known, err, want, wantKnown)
		}
	}
	check("c", map[StreamKey]uint64{b.StreamKey: 1}, true)
	check("cd", map[StreamKey]uint64{a.StreamKey: 9}, true)
	check("e", map[StreamKey]uint64{}, true)

	// Clients saved before the cut go, except those kept.
	done, wait := syncDone(t)
	s.PrunePositions(now.Add(-time.Minute), func(id string) bool { return id == "cd" }, done)
	wait()
	check("c", map[StreamKey]uint64{}, false)
	check("cd", map[StreamKey]uint64{a.StreamKey: 9}, true)
	check("e", map[StreamKey]uint64{}, true)
	check("f", map[StreamKey]uint64{{Site: a.Site, Stream: 256}: 3}, true)
}
