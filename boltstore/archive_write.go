package boltstore

import (
	"encoding/binary"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// flush commits a batch: IDs in batch order, then one transaction per
// rule with messages in it. It runs on the writer goroutine.
func (a *Archive) flush(batch []archReq) {
	ids := make([]uint64, len(batch))
	errs := make([]error, len(a.byRule))
	var groups [][]int // rule -> indices in batch
	for i := range batch {
		r := &batch[i]
		if r.rule < 0 {
			continue
		}
		// The ID is the time the message came, in unix nanoseconds,
		// made unique and increasing: a clock stepping back does not
		// reorder the archive.
		id := uint64(max(r.t, 0))
		if id <= a.lastID {
			id = a.lastID + 1
		}
		a.lastID, ids[i] = id, id
		if groups == nil {
			groups = make([][]int, len(a.byRule))
		}
		groups[r.rule] = append(groups[r.rule], i)
	}
	for rule, idx := range groups {
		if len(idx) == 0 {
			continue
		}
		l := a.byRule[rule]
		if errs[rule] = a.commitLog(l, batch, idx, ids); errs[rule] != nil {
			a.failed.Add(uint64(len(idx)))
			a.log.Error("archive commit failed: messages lost", "filter", l.filter, "messages", len(idx), "err", errs[rule])
		} else {
			a.written.Add(uint64(len(idx)))
		}
		a.enforce(l)
	}
	a.commits.Add(1)
	a.lastBatch.Store(int64(len(batch)))
	size := 0
	for i := range batch {
		if r := &batch[i]; r.rule >= 0 {
			size += queuedBytes(r.topic, r.meta, r.payload)
		}
	}
	a.release(size)
	for i := range batch {
		if r := &batch[i]; r.done != nil {
			var err error
			if r.rule >= 0 {
				err = errs[r.rule]
			}
			r.done(ids[i], err)
		}
	}
}

// commitLog writes the messages batch[idx] of one rule: in one
// transaction on its current segment, or, for a rule with a cap, in
// chunks of at most half a segment's size, each after the cap has made
// room for it, so that a large batch rolls segments as it goes and the
// rule's files never exceed the cap.
func (a *Archive) commitLog(l *archLog, batch []archReq, idx []int, ids []uint64) error {
	limit := l.segmentBytes() / 2
	if limit == 0 {
		return a.commitChunk(l, batch, idx, ids)
	}
	for len(idx) > 0 {
		n, size := 0, 0
		for n < len(idx) {
			r := &batch[idx[n]]
			size += recordSize(r.topic, r.meta, r.payload)
			if n > 0 && size > int(limit) {
				break
			}
			n++
		}
		a.enforce(l) // room for this chunk before it is written
		if err := a.commitChunk(l, batch, idx[:n], ids); err != nil {
			return err
		}
		idx = idx[n:]
	}
	return nil
}

// commitChunk writes the messages batch[idx] of one rule in one
// transaction on its current segment.
func (a *Archive) commitChunk(l *archLog, batch []archReq, idx []int, ids []uint64) error {
	sg, err := a.segmentFor(l, ids[idx[0]])
	if err != nil {
		return err
	}
	bw := &a.bw
	size := 0
	for _, i := range idx {
		r := &batch[i]
		size += recordSize(r.topic, r.meta, r.payload)
	}
	bw.reset(size)
	for _, i := range idx {
		r := &batch[i]
		bw.add(ids[i], r.topic, r.meta, r.payload)
	}
	bw.done()
	count := binary.BigEndian.AppendUint64(nil, sg.count+uint64(len(idx)))
	err = sg.db.Update(func(tx *bolt.Tx) error {
		mb, tb, ib := tx.Bucket(bucketArchMsgs), tx.Bucket(bucketArchTopics), tx.Bucket(bucketArchInfo)
		if mb == nil || tb == nil || ib == nil {
			return fmt.Errorf("segment %s: buckets missing: %w", sg.path, ErrCorrupt)
		}
		mb.FillPercent = 1.0 // keys only grow: pack pages full
		for _, kv := range bw.blocks {
			if err := mb.Put(kv.k, kv.v); err != nil {
				return fmt.Errorf("put messages: %w", err)
			}
		}
		for _, kv := range bw.index {
			if err := tb.Put(kv.k, kv.v); err != nil {
				return fmt.Errorf("put topic index: %w", err)
			}
		}
		return ib.Put(keyArchCount, count)
	})
	if err != nil {
		return err
	}
	fsize := sg.size
	if fi, err := os.Stat(sg.path); err == nil {
		fsize = fi.Size()
	}
	a.mu.Lock()
	sg.count += uint64(len(idx))
	sg.last = ids[idx[len(idx)-1]]
	sg.size = fsize
	a.mu.Unlock()
	return nil
}
