package boltstore

import (
	"encoding/binary"
)

// Stream blocks. A stream bucket holds its records in small blocks, not
// one bbolt key each, for the reason the archive does (archive_block.go):
// bbolt's Put searches the tree from its root and its commit spills every
// key, so a key per 64-byte message was a third of the message writer's
// CPU. A block is the records of one stream from one commit, in
// sequence order, up to maxStreamBlockBytes:
//
//	[0]    streamBlockVersion (2)
//	[1]    n, the records in the block (1 to 255)
//	then n length-prefixed records, as in an archive block
//
// It is stored under the sequence number of its last record, so a seek to
// a sequence number finds the block that holds it, and the last key of a
// stream is still its head. Record i (from 0) has sequence number
// last-n+1+i, and its CRC-32C covers that number: a block under the
// wrong key, or with a wrong count, fails every record's check.
//
// Blocks stay small because bbolt rewrites the last leaf of a stream at
// every commit, and a leaf holds at least two values however large. At
// 996 bytes at most, four blocks with their keys and bbolt's 16-byte
// headers fill a 4 KiB page; at 1 KiB only three fitted, and pages were
// a quarter empty.
//
// A value of version 1 (stores written before blocks) is one record,
// under its own sequence number.
const (
	streamBlockVersion    = 2
	maxStreamBlockBytes   = (4096-16)/4 - 16 - 8
	maxStreamBlockRecords = 255
)

// streamBlock builds one stream's blocks in a commit's buffer.
type streamBlock struct {
	start int // where the block being built starts in the buffer
	n     int // its records
}

// add appends the record of seq to the block being built in buf, first
// handing the block to put when the record does not fit. last is the
// sequence number of the block's last record so far.
func (sb *streamBlock) add(buf []byte, last, seq uint64, time int64, topic string, meta, payload []byte,
	put func(key, block []byte) error) ([]byte, error) {
	if sb.n > 0 && (sb.n == maxStreamBlockRecords || len(buf)-sb.start+recordSize(topic, meta, payload) > maxStreamBlockBytes) {
		var err error
		if buf, err = sb.close(buf, last, put); err != nil {
			return buf, err
		}
	}
	if sb.n == 0 {
		sb.start = len(buf)
		buf = append(buf, streamBlockVersion, 0)
	}
	sb.n++
	return appendBlockRecord(buf, seq, time, topic, meta, payload), nil
}

// close ends the block being built, if any, and hands it to put under
// last, the sequence number of its last record. The key goes in buf too:
// bbolt keeps keys and values until the commit.
func (sb *streamBlock) close(buf []byte, last uint64, put func(key, block []byte) error) ([]byte, error) {
	if sb.n == 0 {
		return buf, nil
	}
	buf[sb.start+1] = byte(sb.n)
	block := buf[sb.start:len(buf):len(buf)]
	off := len(buf)
	buf = binary.BigEndian.AppendUint64(buf, last)
	sb.n = 0
	return buf, put(buf[off:len(buf):len(buf)], block)
}

// streamRecords calls fn with each record of the value v stored under
// sequence number last, in order: its sequence number and its bytes,
// to be decoded with decodeRecord under that number. fn returns false to
// stop. Where the block's lengths or count do not hold, fn gets the next
// sequence number with a nil record and nothing more: the rest of the
// block is unreadable. extra is the bytes found past a block's last
// record, which a block written whole never has.
func streamRecords(last uint64, v []byte, fn func(seq uint64, rec []byte) bool) (extra int) {
	if len(v) == 0 || v[0] != streamBlockVersion {
		fn(last, v) // a record of its own, or garbage its check will find
		return 0
	}
	if len(v) < 2 || v[1] == 0 || uint64(v[1]) > last {
		fn(last, nil)
		return 0
	}
	off := 2
	for seq := last - uint64(v[1]) + 1; seq <= last; seq++ {
		rec, ok := framedAt(v, off)
		if !ok {
			fn(seq, nil)
			return 0
		}
		if !fn(seq, rec) {
			return 0
		}
		off += 4 + len(rec)
	}
	return len(v) - off
}

// decodeStreamRecord checks and decodes the record of sequence number seq
// that streamRecords found.
func decodeStreamRecord(seq uint64, rec []byte) (Record, error) {
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], seq)
	return decodeRecord(key[:], rec)
}
