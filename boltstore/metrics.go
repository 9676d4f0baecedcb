package boltstore

import (
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A Commit describes one committed transaction of the message writer,
// for metrics.
type Commit struct {
	Records  int           // appends and tombstones in the batch
	Duration time.Duration // time in bbolt's Update: building the pages, writing them, fsync
	Bytes    int64         // bytes of pages written, the meta page included
}

// DiskStats counts the store's writes to disk, message and meta commits
// together.
type DiskStats struct {
	Commits      uint64 // transactions committed
	Fsyncs       uint64 // fdatasync calls: two per commit (pages, then meta page)
	BytesWritten uint64 // bytes of pages written
}

// diskMetrics counts commits for DiskStats and calls the commit observer.
type diskMetrics struct {
	commits  atomic.Uint64
	bytes    atomic.Uint64
	observer atomic.Pointer[func(Commit)]
}

// ObserveCommits makes fn be called after every message commit (not
// after session or retained-message updates), on the store's writer
// goroutine: fn must not block. A later call replaces fn; nil removes
// it. It is safe to call concurrently with writes.
func (s *Store) ObserveCommits(fn func(Commit)) {
	if fn == nil {
		s.dm.observer.Store(nil)
		return
	}
	s.dm.observer.Store(&fn)
}

// DiskStats returns the store's disk write counters. It is safe for
// concurrent use.
func (s *Store) DiskStats() DiskStats {
	n := s.dm.commits.Load()
	return DiskStats{Commits: n, Fsyncs: 2 * n, BytesWritten: s.dm.bytes.Load()}
}

// update runs db.Update and counts the commit. When records > 0 it is a
// message commit, reported to the observer.
func (m *diskMetrics) update(db *bolt.DB, records int, fn func(*bolt.Tx) error) error {
	var written int64
	start := time.Now()
	err := db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		// Every dirty page is newly allocated (copy on write), so the
		// bytes allocated are the bytes written, plus the meta page.
		tx.OnCommit(func() { st := tx.Stats(); written = st.GetPageAlloc() })
		return nil
	})
	if err != nil {
		return err
	}
	d := time.Since(start)
	written += int64(db.Info().PageSize)
	m.commits.Add(1)
	m.bytes.Add(uint64(written))
	if fn := m.observer.Load(); fn != nil && records > 0 {
		(*fn)(Commit{Records: records, Duration: d, Bytes: written})
	}
	return nil
}
