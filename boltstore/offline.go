package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The state of the broker's offline message rules lives in meta.db's
// "offline" bucket; the messages themselves are ordinary records of the
// generation files. Writes go through the meta writer like session
// writes: done (may be nil) is called after the commit.
//
//	'q' name 0x00 'm'                 -> creation time (unix ns, uint64 BE): the queue exists
//	'q' name 0x00 'i' StreamKey (18)  -> seq (uint64 BE): the queue has indexed the stream up to seq
//	'q' name 0x00 'e' RecordID (26)   -> empty: a message waiting in the queue
//	'p' client ID 0x00                -> last saved (unix ns, uint64 BE): the client is known
//	'p' client ID 0x00 StreamKey (18) -> seq (uint64 BE): its read position in a pubsub stream
//
// A queue's name is its topic filter, which holds no U+0000, nor does a
// client ID [MQTT-1.5.4-2], so the keys of one queue or one client never
// run into another's.

var bucketOffline = []byte("offline")

func queuePrefix(name string, kind byte) []byte {
	return append(append(append([]byte{'q'}, name...), 0), kind)
}

func positionPrefix(clientID string) []byte {
	return append(append([]byte{'p'}, clientID...), 0)
}

// QueueState is what the store keeps of one queue.
type QueueState struct {
	// Exists reports whether the queue was started (SetQueueIndex).
	Exists bool
	// Indexed holds, per stream, the sequence number up to which every
	// record of the queue's topics is in Entries or was consumed.
	Indexed map[StreamKey]uint64
	// Entries are the messages waiting in the queue, in key order.
	Entries []RecordID
}

// LoadQueue returns the stored state of the queue name.
func (s *Store) LoadQueue(name string) (QueueState, error) {
	st := QueueState{Indexed: make(map[StreamKey]uint64)}
	err := s.meta.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOffline)
		if b == nil {
			return nil
		}
		st.Exists = b.Get(queuePrefix(name, 'm')) != nil
		p := queuePrefix(name, 'i')
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			sk, err := ParseStreamKey(k[len(p):])
			if err != nil || len(v) != 8 {
				return fmt.Errorf("index of queue %q: %w", name, ErrCorrupt)
			}
			st.Indexed[sk] = binary.BigEndian.Uint64(v)
		}
		p = queuePrefix(name, 'e')
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			id, err := ParseRecordID(k[len(p):])
			if err != nil {
				return fmt.Errorf("entry of queue %q: %w", name, err)
			}
			st.Entries = append(st.Entries, id)
		}
		return nil
	})
	return st, err
}

// SetQueueIndex marks the queue name as started and replaces its index
// positions with indexed (streams left out are forgotten: their
// generations were dropped).
func (s *Store) SetQueueIndex(name string, indexed map[StreamKey]uint64, done func(error)) {
	ip := queuePrefix(name, 'i')
	rows := seqRows(ip, indexed)
	mark := queuePrefix(name, 'm')
	now := binary.BigEndian.AppendUint64(nil, uint64(s.opts.Now().UnixNano()))
	s.mw.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOffline)
		if err != nil {
			return err
		}
		if b.Get(mark) == nil {
			if err := b.Put(mark, now); err != nil {
				return err
			}
		}
		if err := deletePrefix(b, ip); err != nil {
			return err
		}
		return putRows(b, rows)
	}, done)
}

// QueueAdd records messages as waiting in the queue name, and moves the
// queue's index position in each of their streams up to them.
func (s *Store) QueueAdd(name string, ids []RecordID, done func(error)) {
	ep, ip := queuePrefix(name, 'e'), queuePrefix(name, 'i')
	s.mw.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOffline)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := b.Put(append(bytes.Clone(ep), id.Bytes()...), nil); err != nil {
				return err
			}
			ik := append(bytes.Clone(ip), id.StreamKey.Bytes()...)
			if v := b.Get(ik); len(v) == 8 && binary.BigEndian.Uint64(v) >= id.Seq {
				continue
			}
			if err := b.Put(ik, binary.BigEndian.AppendUint64(nil, id.Seq)); err != nil {
				return err
			}
		}
		return nil
	}, done)
}

// QueueRemove removes messages from the queue name: consumed, or gone
// from the store.
func (s *Store) QueueRemove(name string, ids []RecordID, done func(error)) {
	ep := queuePrefix(name, 'e')
	s.mw.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOffline)
		if b == nil {
			return nil
		}
		for _, id := range ids {
			if err := b.Delete(append(bytes.Clone(ep), id.Bytes()...)); err != nil {
				return err
			}
		}
		return nil
	}, done)
}

// PutPositions replaces a client's read positions in the pubsub streams
// and marks the client as known, now: a client without positions in a
// stream reads it from its start, one the store does not know is new.
func (s *Store) PutPositions(clientID string, pos map[StreamKey]uint64, done func(error)) {
	p := positionPrefix(clientID)
	rows := append(seqRows(p, pos), kvRow{p, binary.BigEndian.AppendUint64(nil, uint64(s.opts.Now().UnixNano()))})
	s.mw.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOffline)
		if err != nil {
			return err
		}
		if err := deletePrefix(b, p); err != nil {
			return err
		}
		return putRows(b, rows)
	}, done)
}

// LoadPositions returns a client's read positions in the pubsub streams;
// known is false when the store has none for it.
func (s *Store) LoadPositions(clientID string) (pos map[StreamKey]uint64, known bool, err error) {
	pos = make(map[StreamKey]uint64)
	p := positionPrefix(clientID)
	err = s.meta.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOffline)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if len(k) == len(p) {
				known = true
				continue
			}
			sk, err := ParseStreamKey(k[len(p):])
			if err != nil || len(v) != 8 {
				return fmt.Errorf("read position of %q: %w", clientID, ErrCorrupt)
			}
			pos[sk] = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return pos, known, err
}

// PrunePositions deletes the positions of the clients last saved before
// before, except those keep (may be nil) names.
func (s *Store) PrunePositions(before time.Time, keep func(clientID string) bool, done func(error)) {
	cut := uint64(before.UnixNano())
	s.mw.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOffline)
		if b == nil {
			return nil
		}
		var old [][]byte
		c := b.Cursor()
		for k, v := c.Seek([]byte{'p'}); k != nil && k[0] == 'p'; k, v = c.Next() {
			if bytes.IndexByte(k, 0) != len(k)-1 || len(v) != 8 || binary.BigEndian.Uint64(v) >= cut {
				continue // a position, or a client saved since
			}
			if keep == nil || !keep(string(k[1:len(k)-1])) {
				old = append(old, bytes.Clone(k))
			}
		}
		for _, p := range old {
			if err := deletePrefix(b, p); err != nil {
				return err
			}
		}
		return nil
	}, done)
}

type kvRow struct{ k, v []byte }

// seqRows returns the rows prefix+stream key -> seq of m.
func seqRows(prefix []byte, m map[StreamKey]uint64) []kvRow {
	rows := make([]kvRow, 0, len(m))
	for k, seq := range m {
		rows = append(rows, seqRow(prefix, k, seq))
	}
	return rows
}

// seqRow is the row prefix+k -> seq.
func seqRow(prefix []byte, k StreamKey, seq uint64) kvRow {
	return kvRow{append(bytes.Clone(prefix), k.Bytes()...), binary.BigEndian.AppendUint64(nil, seq)}
}

func putRows(b *bolt.Bucket, rows []kvRow) error {
	for _, r := range rows {
		if err := b.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}
