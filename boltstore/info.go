package boltstore

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GenInfo describes a generation file.
type GenInfo struct {
	Gen      Gen
	Start    time.Time
	End      time.Time
	File     string
	Bytes    int64
	Messages uint64
	Streams  int
}

// Info describes the store for `gatemq ds info`.
type Info struct {
	Dir         string
	Site        SiteID
	Shards      int
	Generations []GenInfo
	Streams     int
	Sessions    int
	Retained    int
	Clients     int // client status records
	Online      int // of them, online at this site
	Bytes       int64
}

// Info returns a description of the store.
func (s *Store) Info() Info {
	in := Info{Dir: s.dir, Site: s.site, Shards: s.opts.NShards, Sessions: s.SessionCount()}
	s.mu.RLock()
	for _, g := range s.gens {
		gi := GenInfo{Gen: g.id, Start: s.genStart(g.id), End: s.genStart(g.id + 1), File: g.path}
		for k, head := range s.heads {
			if k.Gen == g.id {
				gi.Messages += head
				gi.Streams++
			}
		}
		if fi, err := os.Stat(g.path); err == nil {
			gi.Bytes = fi.Size()
		}
		in.Streams += gi.Streams
		in.Bytes += gi.Bytes
		in.Generations = append(in.Generations, gi)
	}
	s.mu.RUnlock()
	if fi, err := os.Stat(s.meta.Path()); err == nil {
		in.Bytes += fi.Size()
	}
	s.meta.View(func(tx *bolt.Tx) error {
		in.Retained = tx.Bucket(bucketRetained).Stats().KeyN
		in.Clients, in.Online = statusCounts(tx, s.site)
		return nil
	})
	return in
}

// Stats are the store's counters.
type Stats struct {
	Commits        uint64 // message transactions committed
	Records        uint64 // records committed
	Refused        uint64 // appends refused by the quota
	Failed         uint64 // appends failed by I/O errors
	LastBatch      int64  // records in the last commit
	CorruptRecords uint64 // records that failed their checksum on read
	Bytes          int64  // size of the store's files
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	corrupt := s.corrupt
	s.mu.RUnlock()
	return Stats{
		Commits: s.w.commits.Load(), Records: s.w.records.Load(), Refused: s.w.refused.Load(),
		Failed: s.w.failed.Load(), LastBatch: s.w.lastBatch.Load(), CorruptRecords: corrupt, Bytes: s.sizeBytes(),
	}
}

// Check verifies every record, session, retained message, client
// status and preset of the store: bbolt's own page consistency check,
// then each value's checksum, and that the online index lists exactly
// the online clients. It returns the problems found, joined, or nil.
func (s *Store) Check() error {
	var errs []error
	s.mu.RLock()
	gens := append([]*generation(nil), s.gens...)
	s.mu.RUnlock()
	for _, g := range gens {
		errs = append(errs, checkPages(g.db)...)
		err := g.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				k, ok := parseBucketName(name, g.id)
				if !ok {
					return nil
				}
				return b.ForEach(func(key, v []byte) error {
					if len(key) != 8 {
						errs = append(errs, fmt.Errorf("%s: record %s/%x: %w", g.path, k, key, ErrCorrupt))
						return nil
					}
					extra := streamRecords(beUint64(key), v, func(seq uint64, rec []byte) bool {
						if rec == nil {
							errs = append(errs, fmt.Errorf("%s: record %s/%d: %w", g.path, k, seq, errCorruptBlock))
						} else if _, err := decodeStreamRecord(seq, rec); err != nil {
							errs = append(errs, fmt.Errorf("%s: record %s/%d: %w", g.path, k, seq, err))
						}
						return true
					})
					if extra > 0 {
						errs = append(errs, fmt.Errorf("%s: block %s/%d: %d bytes past its records: %w", g.path, k, beUint64(key), extra, ErrCorrupt))
					}
					return nil
				})
			})
		})
		if err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, checkPages(s.meta)...)
	s.LoadSessions(func(string, map[string][]byte) error { return nil }, func(id string, err error) {
		errs = append(errs, fmt.Errorf("session %q: %w", id, err))
	})
	s.LoadRetained(func(string, []byte) error { return nil }, func(topic string, err error) {
		errs = append(errs, fmt.Errorf("retained %q: %w", topic, err))
	})
	errs = append(errs, s.checkStatus()...)
	s.LoadPresets(func(string, string, []byte) error { return nil }, func(id, filter string, err error) {
		errs = append(errs, fmt.Errorf("preset %q %q: %w", id, filter, err))
	})
	return errors.Join(errs...)
}

// errRollback ends a transaction that only looked.
var errRollback = errors.New("rollback")

// checkPages runs bbolt's page consistency check. It runs in a writable
// transaction, rolled back: bbolt's check reads the freelist, which only
// the writer may touch, so in a read transaction it races with commits.
// A file opened read-only has no writer: a read transaction does.
func checkPages(db *bolt.DB) []error {
	var errs []error
	run := db.Update
	if db.IsReadOnly() {
		run = db.View
	}
	err := run(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errs = append(errs, fmt.Errorf("%s: %w", db.Path(), e))
		}
		return errRollback
	})
	if err != nil && !errors.Is(err, errRollback) && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		errs = append(errs, err)
	}
	return errs
}
