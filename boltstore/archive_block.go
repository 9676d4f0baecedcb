package boltstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// errCorruptBlock is the error of a record a block's lengths or count, or a topic
// index entry, do not lead to.
var errCorruptBlock = fmt.Errorf("block: record out of place: %w", ErrCorrupt)

// Archive blocks. The archive stores messages in blocks, not one bbolt
// key each: a key per message made the writer's B+tree work (a search
// per put, a split every few dozen) cost it three times as much. A block
// is the value of one "m" key, its first message's ID, and holds the
// records of a run of one rule's messages from one batch, each
// length-prefixed:
//
//	[uint32 BE n][record: n bytes] [uint32 BE n][record] ...
//
// A record is the message format of record.go keyed by the message's ID
// (its time field is the ID too), so every record carries its own
// CRC-32C over its ID and bytes: a flipped byte costs that record, a
// corrupt length the rest of its block, and neither is ever returned.
//
// Blocks are small (16 KiB, about a hundred small messages): bbolt
// rewrites a whole leaf on every change, and a leaf keeps at least two
// and up to four values however large, so with blocks of a whole batch
// (250 KiB) every commit wrote 1.1 MiB of pages for 250 KiB of messages;
// with 16 KiB blocks, 340 KiB.
//
// The topic index has one key per topic and commit, topic + 0x00 + the
// ID of that topic's first message in the commit, whose value lists the
// IDs of that topic's messages in the commit (uint64 BE each, in order).
// A listed message is found in the block that holds its ID: the last one
// starting at or before it.

const (
	// maxBlockBytes and maxBlockRecords close a block; a record larger
	// than maxBlockBytes has a block of its own.
	maxBlockBytes   = 16 << 10
	maxBlockRecords = 4096
)

// appendBlockRecord appends one length-prefixed record to a block: the
// record of record.go keyed by id, with time as its time.
func appendBlockRecord(dst []byte, id uint64, time int64, topic string, meta, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], id)
	dst = encodeRecord(dst, key[:], time, topic, meta, payload)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// framedAt returns the record whose length prefix is at off in block; ok
// is false when the length runs past the block or the record is too
// short to hold a time (the block is corrupt from there).
func framedAt(block []byte, off int) (rec []byte, ok bool) {
	if off < 0 || off+4 > len(block) {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(block[off:]))
	if n < 9 || n > len(block)-off-4 {
		return nil, false
	}
	return block[off+4 : off+4+n : off+4+n], true
}

// recordAt returns the archive record whose length prefix is at off in
// block, and its ID as the record says (its time); ok as for framedAt.
func recordAt(block []byte, off int) (rec []byte, id uint64, ok bool) {
	rec, ok = framedAt(block, off)
	if !ok {
		return nil, 0, false
	}
	return rec, binary.BigEndian.Uint64(rec[1:9]), true
}

// blockEntry is one record of a block, as a listing visits it.
type blockEntry struct {
	id  uint64
	rec []byte // nil: the block is unreadable from here
}

// blockEntries appends the records of block, whose key is first, to dst
// in ID order, and an entry with a nil record (and the next ID) when a
// length runs past the block: the rest of it is unreadable.
func blockEntries(dst []blockEntry, block []byte, first uint64) []blockEntry {
	next := first
	for off := 0; off < len(block); {
		rec, id, ok := recordAt(block, off)
		if !ok {
			return append(dst, blockEntry{id: next})
		}
		dst = append(dst, blockEntry{id: id, rec: rec})
		off += 4 + len(rec)
		next = id + 1
	}
	return dst
}

// blockFor returns the block of c's bucket ("m") that holds id: the
// last one starting at or before it, its key, and the key of the next
// block (the end of its IDs; math.MaxUint64 for the last block); ok is
// false when there is none.
func blockFor(c *bolt.Cursor, id uint64) (first, next uint64, block []byte, ok bool) {
	key := binary.BigEndian.AppendUint64(nil, id)
	k, v := c.Seek(key)
	switch {
	case k == nil:
		k, v = c.Last()
	case !bytes.Equal(k, key):
		k, v = c.Prev()
	}
	if len(k) != 8 {
		return 0, 0, nil, false
	}
	first, next = binary.BigEndian.Uint64(k), math.MaxUint64
	if nk, _ := c.Next(); len(nk) == 8 {
		next = binary.BigEndian.Uint64(nk)
	}
	return first, next, v, true
}

// recordIn returns the record of id among the entries of one block (in
// ID order), and whether the block holds it or may have held it: its
// record is nil when the block is unreadable there.
func recordIn(ents []blockEntry, id uint64) (rec []byte, found bool) {
	i, ok := slices.BinarySearchFunc(ents, id, func(e blockEntry, id uint64) int { return cmp.Compare(e.id, id) })
	if ok {
		return ents[i].rec, true
	}
	// Past a corrupt length, IDs are guesses: the block may have held it.
	if n := len(ents); n > 0 && ents[n-1].rec == nil && id >= ents[n-1].id {
		return nil, true
	}
	return nil, false
}

// blockWriter builds the blocks and index entries of one rule's
// messages in one commit. Its buffers hold every key and value until the
// commit, as bbolt requires; the writer goroutine reuses it from commit
// to commit.
type blockWriter struct {
	buf    []byte            // every block, back to back
	blocks []blockKV         // in ID order
	index  []blockKV         // sorted by key before they are put
	start  int               // where the block being built starts in buf
	first  uint64            // its key
	n      int               // its records
	topics map[string][]byte // topic -> its messages' IDs in the commit
}

type blockKV struct{ k, v []byte }

// maxKeptBuffer is the largest block buffer kept from one commit to the
// next; a larger one (a batch of big payloads) goes to the collector.
const maxKeptBuffer = 8 << 20

// keptBuffer returns buf emptied, or a new buffer when buf cannot hold
// size bytes or is past maxKeptBuffer and more than size needs.
func keptBuffer(buf []byte, size int) []byte {
	if cap(buf) < size || cap(buf) > max(size, maxKeptBuffer) {
		return make([]byte, 0, size)
	}
	return buf[:0]
}

// reset empties w for a commit of records taking size bytes.
func (w *blockWriter) reset(size int) {
	w.buf = keptBuffer(w.buf, size)
	w.blocks, w.index, w.start, w.n = w.blocks[:0], w.index[:0], 0, 0
	if w.topics == nil {
		w.topics = make(map[string][]byte)
	}
}

// recordSize is the bytes a message takes in a block.
func recordSize(topic string, meta, payload []byte) int {
	return 4 + 19 + len(topic) + len(meta) + len(payload)
}

// add appends a message to the current block, closing it first when it
// is full.
func (w *blockWriter) add(id uint64, topic string, meta, payload []byte) {
	if w.n > 0 && (w.n == maxBlockRecords || len(w.buf)-w.start+recordSize(topic, meta, payload) > maxBlockBytes) {
		w.close()
	}
	if w.n == 0 {
		w.first, w.start = id, len(w.buf)
	}
	w.buf = appendBlockRecord(w.buf, id, int64(id), topic, meta, payload)
	w.topics[topic] = binary.BigEndian.AppendUint64(w.topics[topic], id)
	w.n++
}

// close ends the current block.
func (w *blockWriter) close() {
	if w.n == 0 {
		return
	}
	key := binary.BigEndian.AppendUint64(nil, w.first)
	w.blocks = append(w.blocks, blockKV{key, w.buf[w.start:len(w.buf):len(w.buf)]})
	w.n = 0
}

// done closes the last block and makes the index entries, sorted by key:
// puts in key order touch each page of the index once.
func (w *blockWriter) done() {
	w.close()
	for topic, ids := range w.topics {
		k := make([]byte, 0, len(topic)+9)
		k = append(append(append(k, topic...), 0), ids[:8]...)
		w.index = append(w.index, blockKV{k, ids})
		delete(w.topics, topic)
	}
	slices.SortFunc(w.index, func(a, b blockKV) int { return bytes.Compare(a.k, b.k) })
}
