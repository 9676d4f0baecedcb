package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ArchiveRecord is one archived message.
type ArchiveRecord struct {
	// ID is the message's archive ID: the time it came, in unix
	// nanoseconds, made unique and increasing.
	ID      uint64
	Topic   string
	Meta    []byte // the caller's metadata, as given to Add
	Payload []byte
	Rule    string // the filter of the rule it is kept under
}

// Time returns when the message came (its ID).
func (r ArchiveRecord) Time() time.Time { return time.Unix(0, int64(r.ID)) }

// ArchiveQuery selects archived messages for List.
type ArchiveQuery struct {
	// Topic is the exact topic to list, through the topic index, when
	// Match is nil.
	Topic string
	// Match, when set, selects topics instead of Topic (a filter with
	// wildcards): the archive is scanned by time and every record's
	// topic asked.
	Match func(topic string) bool
	// From and To bound the IDs (times in unix nanoseconds): From
	// included, To excluded; 0 leaves that end open.
	From, To uint64
	// After continues a listing: only IDs past it in the listing's
	// direction (greater oldest first, smaller newest first). 0 starts
	// at the range's end.
	After uint64
	// Newest lists newest first; the default is oldest first.
	Newest bool
	// Limit is the most records a page holds. Default 100.
	Limit int
	// MaxBytes ends a page once its payloads reach this many bytes, and
	// MaxScan once this many records were looked at (matching or not),
	// so that every page is bounded. Defaults 16 MiB and 100,000.
	MaxBytes int
	MaxScan  int
}

// ArchivePage is one page of a listing.
type ArchivePage struct {
	Records []ArchiveRecord
	// Next is the After of the next page, 0 when there is none. A page
	// cut short by MaxBytes or MaxScan may hold fewer than Limit records
	// and still have a Next.
	Next uint64
	// Corrupt counts records skipped because they failed their checksum
	// (or the topic index pointed to a wrong one).
	Corrupt int
}

// List returns one page of the messages q selects, over every rule's
// segments, in ID order. A message past its rule's retention is not
// returned even before its segment is deleted. A record failing its
// checksum is never returned: it is counted in Corrupt and skipped.
// List holds read transactions only while it runs; it is safe for
// concurrent use with writes.
func (a *Archive) List(q ArchiveQuery) (ArchivePage, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.MaxBytes <= 0 {
		q.MaxBytes = 16 << 20
	}
	if q.MaxScan <= 0 {
		q.MaxScan = 100000
	}
	var page ArchivePage
	a.mu.RLock()
	var its []*archIter
	for _, l := range a.logs {
		it := &archIter{filter: l.filter, segs: append([]*archSeg(nil), l.segs...), newest: q.Newest}
		if q.Match == nil {
			it.prefix = append([]byte(q.Topic), 0)
		}
		it.lo, it.hi = max(q.From, a.cutoff(l)), uint64(math.MaxUint64)
		if q.To > 0 {
			it.hi = q.To - 1
		}
		if q.After > 0 {
			if q.Newest {
				it.hi = min(it.hi, q.After-1)
			} else {
				it.lo = max(it.lo, q.After+1)
			}
		}
		its = append(its, it)
	}
	a.mu.RUnlock()
	defer func() {
		for _, it := range its {
			it.close()
		}
	}()
	for _, it := range its {
		if err := it.start(); err != nil {
			return page, err
		}
	}
	var last uint64
	var key [8]byte
	scanned, size := 0, 0
	for len(page.Records) < q.Limit && scanned < q.MaxScan && size < q.MaxBytes {
		var best *archIter
		for _, it := range its {
			if it.ok && (best == nil || (it.id < best.id) != q.Newest) {
				best = it
			}
		}
		if best == nil {
			return page, nil // nothing left: no next page
		}
		scanned++
		last = best.id
		binary.BigEndian.PutUint64(key[:], best.id)
		var r Record
		err := errCorruptBlock
		if best.rec != nil {
			r, err = decodeRecord(key[:], best.rec)
		}
		switch {
		case err != nil || (q.Match == nil && r.Topic != q.Topic):
			page.Corrupt++
			a.corrupt.Add(1)
			a.log.Error("corrupt archive record skipped", "id", best.id, "file", best.segs[best.i].path, "err", err)
		case q.Match == nil || q.Match(r.Topic):
			page.Records = append(page.Records, ArchiveRecord{ID: best.id, Topic: r.Topic, Meta: r.Meta, Payload: r.Payload, Rule: best.filter})
			size += len(r.Payload)
		}
		if err := best.next(); err != nil {
			return page, err
		}
	}
	for _, it := range its {
		if it.ok {
			page.Next = last
		}
	}
	return page, nil
}

// Get returns the archived message id. It returns an error wrapping
// ErrNotFound when there is none (or it is past its rule's retention),
// and one wrapping ErrCorrupt when its record fails its checksum.
func (a *Archive) Get(id uint64) (ArchiveRecord, error) {
	type cand struct {
		sg     *archSeg
		filter string
		cutoff uint64
	}
	var cands []cand
	a.mu.RLock()
	for _, l := range a.logs {
		var found *archSeg
		for _, sg := range l.segs {
			if sg.first <= id {
				found = sg
			}
		}
		if found != nil {
			cands = append(cands, cand{found, l.filter, a.cutoff(l)})
		}
	}
	a.mu.RUnlock()
	key := binary.BigEndian.AppendUint64(nil, id)
	for _, c := range cands {
		if id < c.cutoff {
			continue
		}
		var rec ArchiveRecord
		var derr error
		found := false
		err := c.sg.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketArchMsgs)
			if b == nil {
				return nil
			}
			first, _, block, ok := blockFor(b.Cursor(), id)
			if !ok {
				return nil
			}
			r, inBlock := recordIn(blockEntries(nil, block, first), id)
			if !inBlock {
				return nil
			}
			found = true
			dec, err := decodeRecord(key, r)
			if r == nil {
				err = errCorruptBlock
			}
			if err != nil {
				derr = err
				return nil
			}
			rec = ArchiveRecord{ID: id, Topic: dec.Topic, Meta: dec.Meta, Payload: dec.Payload, Rule: c.filter}
			return nil
		})
		if err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return rec, fmt.Errorf("read archive segment %s: %w", c.sg.path, err)
		}
		if derr != nil {
			a.corrupt.Add(1)
			a.log.Error("corrupt archive record", "id", id, "file", c.sg.path, "err", derr)
			return ArchiveRecord{}, fmt.Errorf("archived message %d: %w", id, derr)
		}
		if found {
			return rec, nil
		}
	}
	return ArchiveRecord{}, fmt.Errorf("archived message %d: %w", id, ErrNotFound)
}

// ArchiveInfo describes the archive.
type ArchiveInfo struct {
	Dir      string
	Rules    []ArchiveRuleInfo
	Messages uint64
	Bytes    int64
}

// ArchiveRuleInfo describes one rule's directory.
type ArchiveRuleInfo struct {
	Filter     string
	Configured bool // false: no rule names it any more; kept until its retention
	Retention  time.Duration
	MaxBytes   int64
	Dir        string
	Segments   []ArchiveSegmentInfo
	Messages   uint64
	Bytes      int64
}

// ArchiveSegmentInfo describes one segment file.
type ArchiveSegmentInfo struct {
	File        string
	First, Last uint64 // IDs; Last 0 while empty
	Messages    uint64
	Bytes       int64
}

// Info returns a description of the archive. It is safe for concurrent
// use.
func (a *Archive) Info() ArchiveInfo {
	in := ArchiveInfo{Dir: a.dir}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, l := range a.logs {
		ri := ArchiveRuleInfo{Filter: l.filter, Configured: l.rule >= 0, Retention: l.retention, MaxBytes: l.maxBytes,
			Dir: filepath.Base(l.dir), Segments: []ArchiveSegmentInfo{}}
		for _, sg := range l.segs {
			ri.Segments = append(ri.Segments, ArchiveSegmentInfo{File: filepath.Base(sg.path), First: sg.first, Last: sg.last,
				Messages: sg.count, Bytes: sg.size})
			ri.Messages += sg.count
			ri.Bytes += sg.size
		}
		in.Rules = append(in.Rules, ri)
		in.Messages += ri.Messages
		in.Bytes += ri.Bytes
	}
	return in
}
