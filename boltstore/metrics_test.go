package boltstore

import (
	"sync"
	"testing"
)

func TestStore_ObserveCommits(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var mu sync.Mutex
	var got []Commit
	s.ObserveCommits(func(c Commit) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	appendSync(t, s, "p", "a/b", "hello")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Records != 1 || got[0].Bytes <= 0 || got[0].Duration <= 0 {
		t.Fatalf("commits observed: %+v, want one of 1 record", got)
	}
	ds := s.DiskStats()
	if ds.Commits < 1 || ds.Fsyncs != 2*ds.Commits || ds.BytesWritten < uint64(got[0].Bytes) {
		t.Fatalf("DiskStats = %+v after a commit of %d bytes", ds, got[0].Bytes)
	}
}
