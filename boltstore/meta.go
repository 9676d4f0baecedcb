package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Sessions, cursors and retained messages live in meta.db. Values are
// the caller's bytes; the store adds a CRC-32C to each so corruption is
// detected on load. Writes are grouped like message appends: done is
// called after the commit that holds them (nil done is allowed).

// A session is stored as named parts (its state, its in-flight table...)
// so that a frequent small update does not rewrite the rest. Keys are
// client ID + 0x00 + part name.

// PutSession stores one part of a session's state.
func (s *Store) PutSession(clientID, part string, value []byte, done func(error)) {
	if refuseKey(len(clientID) > MaxClientIDLen, done) {
		return
	}
	v := sealValue(value)
	key := append(cursorPrefix(clientID), part...)
	s.mw.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Put(key, v)
	}, done)
}

// DeleteSession removes every part of a session and its cursors.
func (s *Store) DeleteSession(clientID string, done func(error)) {
	p := cursorPrefix(clientID)
	s.mw.update(func(tx *bolt.Tx) error {
		if err := deletePrefix(tx.Bucket(bucketSessions), p); err != nil {
			return err
		}
		if b := tx.Bucket(bucketAssigned); b != nil {
			if err := deletePrefix(b, p); err != nil {
				return err
			}
		}
		return deletePrefix(tx.Bucket(bucketCursors), p)
	}, done)
}

// LoadSessions calls fn for every stored session with its parts. A part
// whose value fails its checksum is reported through bad and left out.
func (s *Store) LoadSessions(fn func(clientID string, parts map[string][]byte) error, bad func(clientID string, err error)) error {
	return s.meta.View(func(tx *bolt.Tx) error {
		var (
			cur   string
			parts map[string][]byte
			have  bool
		)
		flush := func() error {
			if !have {
				return nil
			}
			have = false
			return fn(cur, parts)
		}
		err := tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				if bad != nil {
					bad(string(k), fmt.Errorf("session key without part: %w", ErrCorrupt))
				}
				return nil
			}
			id, part := string(k[:i]), string(k[i+1:])
			if !have || id != cur {
				if err := flush(); err != nil {
					return err
				}
				cur, parts, have = id, make(map[string][]byte), true
			}
			val, err := openValue(v)
			if err != nil {
				if bad != nil {
					bad(id, fmt.Errorf("part %q: %w", part, err))
				}
				return nil
			}
			parts[part] = val
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
}

// SessionCount returns the number of stored sessions.
func (s *Store) SessionCount() int {
	n := 0
	s.LoadSessions(func(string, map[string][]byte) error { n++; return nil }, nil)
	return n
}

// refuseKey calls done (may be nil) with ErrKeyTooLong when tooLong,
// and reports tooLong: such a write is refused before it is queued, for
// in the batch it would fail every other write.
func refuseKey(tooLong bool, done func(error)) bool {
	if tooLong && done != nil {
		done(ErrKeyTooLong)
	}
	return tooLong
}

func cursorPrefix(clientID string) []byte {
	return append([]byte(clientID), 0) // client IDs never hold U+0000 [MQTT-1.5.4-2]
}

// PutCursors records, for a session, the last sequence number it has
// finished with in each stream: cursors replaces the session's cursors.
// Those of generations no longer stored are left out, so a long-lived
// session's cursors do not pile up generation after generation.
func (s *Store) PutCursors(clientID string, cursors map[StreamKey]uint64, done func(error)) {
	if refuseKey(len(clientID) > MaxClientIDLen, done) {
		return
	}
	rows := make([]kvRow, 0, len(cursors))
	p := cursorPrefix(clientID)
	for k, seq := range cursors {
		if s.HasGen(k.Gen) {
			rows = append(rows, seqRow(p, k, seq))
		}
	}
	s.mw.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		if err := deletePrefix(b, p); err != nil {
			return err
		}
		return putRows(b, rows)
	}, done)
}

// LoadCursors returns a session's cursors.
func (s *Store) LoadCursors(clientID string) (map[StreamKey]uint64, error) {
	out := make(map[StreamKey]uint64)
	p := cursorPrefix(clientID)
	err := s.meta.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCursors).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			sk, err := ParseStreamKey(k[len(p):])
			if err != nil || len(v) != 8 {
				return fmt.Errorf("cursor of %q: %w", clientID, ErrCorrupt)
			}
			out[sk] = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return out, err
}

// PutRetained stores the retained message of topic; DeleteRetained
// removes it.
func (s *Store) PutRetained(topic string, value []byte, done func(error)) {
	if refuseKey(len(topic) > bolt.MaxKeySize, done) { // MQTT allows 65,535 bytes
		return
	}
	v := sealValue(value)
	s.mw.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).Put([]byte(topic), v)
	}, done)
}

// DeleteRetained removes the retained message of topic.
func (s *Store) DeleteRetained(topic string, done func(error)) {
	s.mw.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).Delete([]byte(topic))
	}, done)
}

// LoadRetained calls fn for every retained message; corrupt ones go to
// bad and are skipped.
func (s *Store) LoadRetained(fn func(topic string, value []byte) error, bad func(topic string, err error)) error {
	return s.meta.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).ForEach(func(k, v []byte) error {
			val, err := openValue(v)
			if err != nil {
				if bad != nil {
					bad(string(k), err)
				}
				return nil
			}
			return fn(string(k), val)
		})
	})
}

func deletePrefix(b *bolt.Bucket, p []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Seek(p) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// sealValue appends a CRC-32C to v; openValue checks and removes it.
func sealValue(v []byte) []byte {
	out := make([]byte, len(v), len(v)+4)
	copy(out, v)
	return binary.BigEndian.AppendUint32(out, crc32c(v))
}

func openValue(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("value of %d bytes: %w", len(v), ErrCorrupt)
	}
	body := v[:len(v)-4]
	if crc32c(body) != binary.BigEndian.Uint32(v[len(v)-4:]) {
		return nil, fmt.Errorf("checksum mismatch: %w", ErrCorrupt)
	}
	return bytes.Clone(body), nil
}

// Messages of shared subscriptions are given to one member of the group.
// For a durable member the store keeps the assignment: "assigned"
// client ID + 0x00 + RecordID (26 bytes) -> nothing.

var bucketAssigned = []byte("assigned")

func assignedKey(clientID string, id RecordID) []byte {
	return append(cursorPrefix(clientID), id.Bytes()...)
}

// Assign records that the stored message id is for clientID's session.
func (s *Store) Assign(clientID string, id RecordID, done func(error)) {
	if refuseKey(len(clientID) > MaxClientIDLen, done) {
		return
	}
	k := assignedKey(clientID, id)
	s.mw.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAssigned)
		if err != nil {
			return err
		}
		return b.Put(k, nil)
	}, done)
}

// Unassign removes assignments the session has finished with.
func (s *Store) Unassign(clientID string, ids []RecordID, done func(error)) {
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = assignedKey(clientID, id)
	}
	s.mw.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAssigned)
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}, done)
}

// Assigned returns the stored messages assigned to clientID's session.
func (s *Store) Assigned(clientID string) ([]RecordID, error) {
	var out []RecordID
	p := cursorPrefix(clientID)
	err := s.meta.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAssigned)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			id, err := ParseRecordID(k[len(p):])
			if err != nil {
				return fmt.Errorf("assignment of %q: %w", clientID, err)
			}
			out = append(out, id)
		}
		return nil
	})
	return out, err
}
