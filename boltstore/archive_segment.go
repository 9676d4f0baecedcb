package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Segments: the files of a rule, their creation, retention and cap.

// ruleDirName is the directory of a rule's segments: "r-" and the
// FNV-1a hash of its filter, which is also stored in each segment.
func ruleDirName(filter string) string {
	h := fnv.New64a()
	h.Write([]byte(filter))
	return fmt.Sprintf("r-%016x", h.Sum64())
}

// segInfo is what a segment's info bucket says of its rule.
type segInfo struct {
	filter    string
	retention time.Duration
	maxBytes  int64
}

// openSegment opens one segment file and reads its last ID, count and
// rule settings.
func (a *Archive) openSegment(path string, first uint64) (*archSeg, segInfo, error) {
	var info segInfo
	db, err := bolt.Open(path, 0o600, boltOptions(a.opts.OpenFile, a.opts.ReadOnly))
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, info, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, info, fmt.Errorf("open archive segment %s: %w", path, err)
	}
	sg := &archSeg{first: first, path: path, db: db}
	read := func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketArchInfo); b != nil {
			info.filter = string(b.Get(keyArchFilter))
			if v := b.Get(keyArchRetention); len(v) == 8 {
				info.retention = time.Duration(binary.BigEndian.Uint64(v))
			}
			if v := b.Get(keyArchMaxBytes); len(v) == 8 {
				info.maxBytes = int64(binary.BigEndian.Uint64(v))
			}
			if v := b.Get(keyArchCount); len(v) == 8 {
				sg.count = binary.BigEndian.Uint64(v)
			}
		}
		if b := tx.Bucket(bucketArchMsgs); b != nil {
			// The last record of the last block; a corrupt one's ID
			// is a guess that only has to be past the ones before.
			if k, v := b.Cursor().Last(); len(k) == 8 {
				ents := blockEntries(nil, v, binary.BigEndian.Uint64(k))
				sg.last = binary.BigEndian.Uint64(k)
				if len(ents) > 0 {
					sg.last = max(sg.last, ents[len(ents)-1].id)
				}
			}
		}
		return nil
	}
	if a.opts.ReadOnly {
		err = db.View(read)
	} else {
		// A file made just before a crash may lack its buckets.
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketArchInfo, bucketArchMsgs, bucketArchTopics} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return read(tx)
		})
	}
	if err != nil {
		db.Close()
		return nil, info, fmt.Errorf("recover archive segment %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil {
		sg.size = fi.Size()
	}
	return sg, info, nil
}

// putInfo writes l's filter and settings into a segment.
func (a *Archive) putInfo(l *archLog, db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketArchInfo)
		if err != nil {
			return err
		}
		if err := b.Put(keyArchFilter, []byte(l.filter)); err != nil {
			return err
		}
		if err := b.Put(keyArchRetention, binary.BigEndian.AppendUint64(nil, uint64(l.retention))); err != nil {
			return err
		}
		return b.Put(keyArchMaxBytes, binary.BigEndian.AppendUint64(nil, uint64(l.maxBytes)))
	})
}

// span is how much time one segment of l covers.
func (l *archLog) span() time.Duration {
	return min(max(l.retention/segmentsPerRetention, time.Minute), 24*time.Hour)
}

// segmentBytes is the size at which a segment of l is closed; 0 for none.
func (l *archLog) segmentBytes() int64 {
	if l.maxBytes <= 0 {
		return 0
	}
	return max(l.maxBytes/segmentsPerRetention, minSegmentBytes)
}

// segmentFor returns the segment the messages from ID first on go to:
// the newest, unless it covers its span of time or has its size, in
// which case a new one named first. It runs on the writer goroutine.
func (a *Archive) segmentFor(l *archLog, first uint64) (*archSeg, error) {
	if n := len(l.segs); n > 0 {
		cur := l.segs[n-1]
		full := l.segmentBytes() > 0 && cur.size >= l.segmentBytes()
		if first >= cur.first && first-cur.first < uint64(l.span()) && !full {
			return cur, nil
		}
	}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", l.dir, err)
	}
	path := filepath.Join(l.dir, fmt.Sprintf("seg-%016x.db", first))
	sg, _, err := a.openSegment(path, first)
	if err != nil {
		return nil, err
	}
	if err := a.putInfo(l, sg.db); err != nil {
		sg.db.Close()
		os.Remove(path)
		return nil, fmt.Errorf("new archive segment %s: %w", path, err)
	}
	a.mu.Lock()
	l.segs = append(l.segs, sg)
	a.mu.Unlock()
	a.log.Debug("new archive segment", "filter", l.filter, "file", filepath.Base(path))
	return sg, nil
}

// maintain applies retention and caps to every rule. It runs on the
// writer goroutine (and in OpenArchive, before it starts).
func (a *Archive) maintain() {
	a.mu.RLock()
	logs := slices.Clone(a.logs)
	a.mu.RUnlock()
	for _, l := range logs {
		a.enforce(l)
	}
}

// enforce drops l's segments whose messages are all past its retention,
// then, while its files leave less than two segments' room under its
// cap, its oldest segments. The
// segment being written goes too when it is past retention; a new one
// is made at the next message.
func (a *Archive) enforce(l *archLog) {
	cutoff := a.cutoff(l)
	var drop []*archSeg
	a.mu.Lock()
	for len(l.segs) > 0 && l.segs[0].last < cutoff {
		drop = append(drop, l.segs[0])
		a.expired.Add(l.segs[0].count)
		l.segs = l.segs[1:]
	}
	if l.maxBytes > 0 {
		// Keep room for the next chunk: the segment it goes to may
		// double (bbolt grows a file in steps) or a new one start.
		limit := l.maxBytes - 2*l.segmentBytes()
		var total int64
		for _, sg := range l.segs {
			total += sg.size
		}
		for total > limit && len(l.segs) > 1 {
			drop = append(drop, l.segs[0])
			a.capped.Add(l.segs[0].count)
			total -= l.segs[0].size
			l.segs = l.segs[1:]
		}
	}
	empty := l.rule < 0 && len(l.segs) == 0
	if empty {
		a.logs = slices.DeleteFunc(a.logs, func(x *archLog) bool { return x == l })
	}
	a.mu.Unlock()
	for _, sg := range drop {
		// Close waits for read transactions in progress.
		if err := sg.db.Close(); err != nil {
			a.log.Warn("close archive segment", "file", sg.path, "err", err)
		}
		if err := os.Remove(sg.path); err != nil {
			a.log.Error("delete archive segment", "file", sg.path, "err", err)
			continue
		}
		a.log.Info("dropped archive segment", "filter", l.filter, "file", filepath.Base(sg.path), "messages", sg.count)
	}
	if empty {
		os.Remove(l.dir) // fails, harmlessly, if something else is in it
	}
}

// cutoff is the ID below which l's messages are past retention.
func (a *Archive) cutoff(l *archLog) uint64 {
	return uint64(max(a.opts.Now().Add(-l.retention).UnixNano(), 0))
}
