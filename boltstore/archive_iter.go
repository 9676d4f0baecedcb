package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// archIter walks one rule's records with IDs between lo and hi (both
// included) in the listing's order, a block at a time, one segment's
// read transaction at a time: through the "m" blocks, or through the
// topic index when prefix is set.
type archIter struct {
	filter string
	segs   []*archSeg
	newest bool
	prefix []byte // topic + 0x00 for the index; nil to scan
	lo, hi uint64

	i    int // current segment
	tx   *bolt.Tx
	c    *bolt.Cursor // on "m" or "t"
	mb   *bolt.Bucket // "m"
	ents []blockEntry // the current block's (or index entry's) records in the range, in listing order

	// The block index lookups last found, and its records: an index
	// entry's messages are mostly in one or two blocks.
	mc      *bolt.Cursor // on "m", for index lookups
	blkFrom uint64       // the block's first ID
	blkTo   uint64       // the next block's first ID
	blkEnts []blockEntry
	pos     int
	last    bool // the current block is the last one in the range
	done    bool // the range is past: no more records

	// The current record: valid while ok. rec is bbolt's memory, valid
	// while tx is open; nil for a record that cannot be found (corrupt).
	ok  bool
	id  uint64
	rec []byte
}

// start positions the iterator on its first record.
func (it *archIter) start() error {
	if it.lo > it.hi || len(it.segs) == 0 {
		return nil
	}
	// Start in the last segment starting at or before the range's end
	// in the listing's direction (the first segment, oldest first, when
	// they all start after it).
	at := it.lo
	if it.newest {
		at = it.hi
	}
	it.i = 0
	for j, sg := range it.segs {
		if sg.first <= at {
			it.i = j
		}
	}
	if it.newest && it.segs[0].first > at {
		return nil // everything is after hi
	}
	return it.open()
}

// open begins a read transaction on segment i and loads the first
// record of the range there, moving on to the following segments while
// one has none. A segment deleted meanwhile reads as empty.
func (it *archIter) open() error {
	for !it.done && it.i >= 0 && it.i < len(it.segs) {
		tx, err := it.segs[it.i].db.Begin(false)
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			it.step()
			continue
		}
		if err != nil {
			return fmt.Errorf("read archive segment %s: %w", it.segs[it.i].path, err)
		}
		it.tx = tx
		it.mb = tx.Bucket(bucketArchMsgs)
		b := it.mb
		if it.prefix != nil {
			b = tx.Bucket(bucketArchTopics)
		}
		if b != nil && it.mb != nil {
			it.c, it.mc, it.blkEnts = b.Cursor(), it.mb.Cursor(), it.blkEnts[:0]
			if it.fill(it.seek()) {
				return nil
			}
		}
		it.rollback()
		it.step()
	}
	it.ok = false
	return nil
}

// seek places the cursor on the first block of the range in the
// listing's direction: the last block starting at or before lo (oldest
// first) or hi (newest first), or the first one after lo.
func (it *archIter) seek() ([]byte, []byte) {
	at := it.lo
	if it.newest {
		at = it.hi
	}
	want := binary.BigEndian.AppendUint64(slices.Clone(it.prefix), at)
	k, v := it.c.Seek(want)
	switch {
	case bytes.Equal(k, want):
		return k, v
	case k == nil:
		k, v = it.c.Last()
	default:
		k, v = it.c.Prev()
	}
	if it.newest || (k != nil && bytes.HasPrefix(k, it.prefix)) {
		return k, v
	}
	return it.c.Seek(want) // nothing starts before lo: the first block after it
}

// fill loads the block at the cursor (key k, value v), or the next one
// with records in the range, and its first record. It reports whether
// it found one; done is set when the range is past.
func (it *archIter) fill(k, v []byte) bool {
	for ; k != nil; k, v = it.move() {
		if !bytes.HasPrefix(k, it.prefix) {
			return false // another topic's index: none in this segment
		}
		bk := k[len(it.prefix):]
		if len(bk) != 8 {
			continue // not a key of ours
		}
		first := binary.BigEndian.Uint64(bk)
		if !it.newest && first > it.hi {
			it.done = true
			return false
		}
		it.ents = it.ents[:0]
		if it.prefix == nil {
			it.ents = blockEntries(it.ents, v, first)
			it.ents = slices.DeleteFunc(it.ents, func(e blockEntry) bool { return e.id < it.lo || e.id > it.hi })
		} else {
			it.ents = it.indexEntries(it.ents, v)
		}
		if it.newest {
			slices.Reverse(it.ents)
			it.last = first <= it.lo // older blocks hold only older IDs
		}
		if len(it.ents) > 0 {
			it.pos = 0
			it.ok, it.id, it.rec = true, it.ents[0].id, it.ents[0].rec
			return true
		}
		if it.last {
			it.done = true
			return false
		}
	}
	return false
}

// indexEntries appends the records of an index value's IDs within the
// range, in ID order; a listed ID no block holds gets a nil record.
func (it *archIter) indexEntries(dst []blockEntry, ids []byte) []blockEntry {
	for i := 0; i+8 <= len(ids); i += 8 {
		id := binary.BigEndian.Uint64(ids[i:])
		if id < it.lo || id > it.hi {
			continue
		}
		if len(it.blkEnts) == 0 || id < it.blkFrom || id >= it.blkTo {
			first, next, block, ok := blockFor(it.mc, id)
			it.blkEnts = it.blkEnts[:0]
			if ok {
				it.blkFrom, it.blkTo, it.blkEnts = first, next, blockEntries(it.blkEnts, block, first)
			}
		}
		rec, _ := recordIn(it.blkEnts, id)
		dst = append(dst, blockEntry{id: id, rec: rec})
	}
	return dst
}

func (it *archIter) move() ([]byte, []byte) {
	if it.newest {
		return it.c.Prev()
	}
	return it.c.Next()
}

// step moves to the next segment in the listing's direction.
func (it *archIter) step() {
	if it.newest {
		it.i--
	} else {
		it.i++
	}
}

// next advances to the following record, across blocks and segments.
func (it *archIter) next() error {
	if !it.ok {
		return nil
	}
	if it.pos++; it.pos < len(it.ents) {
		it.id, it.rec = it.ents[it.pos].id, it.ents[it.pos].rec
		return nil
	}
	it.ok = false
	if it.last {
		it.done = true
		return nil
	}
	if it.fill(it.move()) || it.done {
		return nil
	}
	it.rollback()
	it.step()
	return it.open()
}

func (it *archIter) rollback() {
	if it.tx != nil {
		it.tx.Rollback()
		it.tx, it.c, it.mb, it.mc = nil, nil, nil, nil
		it.blkEnts = it.blkEnts[:0]
	}
}

func (it *archIter) close() {
	it.rollback()
	it.ok = false
}
