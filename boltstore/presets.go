package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Preset subscriptions live in meta.db: "presets" client ID + 0x00 +
// topic filter -> the caller's bytes + CRC-32C. Neither a client ID nor
// a filter holds U+0000 [MQTT-1.5.4-2], so the key splits at its first
// 0x00. Unlike a session's parts they outlive the session: DeleteSession
// leaves them. The bucket is made by the first PutPreset, so a store
// written before presets existed opens unchanged.

var bucketPresets = []byte("presets")

func presetKey(clientID, filter string) []byte {
	return append(cursorPrefix(clientID), filter...)
}

// PresetFits reports whether a preset of clientID to filter fits in a
// key; PutPreset fails with ErrKeyTooLong otherwise. MQTT allows client
// IDs and filters of 65,535 bytes each, bbolt keys of 32,768.
func PresetFits(clientID, filter string) bool {
	return len(clientID)+1+len(filter) <= bolt.MaxKeySize
}

// PutPreset stores the preset subscription to filter of clientID,
// replacing one with the same filter. done (may be nil) is called after
// the commit.
func (s *Store) PutPreset(clientID, filter string, value []byte, done func(error)) {
	if refuseKey(!PresetFits(clientID, filter), done) {
		return
	}
	k, v := presetKey(clientID, filter), sealValue(value)
	s.mw.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPresets)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	}, done)
}

// DeletePreset removes clientID's preset subscription to filter, or all
// of clientID's presets when filter is "". done (may be nil) is called
// after the commit.
func (s *Store) DeletePreset(clientID, filter string, done func(error)) {
	k := presetKey(clientID, filter)
	s.mw.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPresets)
		if b == nil {
			return nil
		}
		if filter == "" {
			return deletePrefix(b, k)
		}
		return b.Delete(k)
	}, done)
}

// LoadPresets calls fn for every stored preset subscription, by client
// ID and then filter; a value failing its checksum, or a key without its
// 0x00, goes to bad and is skipped.
func (s *Store) LoadPresets(fn func(clientID, filter string, value []byte) error, bad func(clientID, filter string, err error)) error {
	return s.meta.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPresets)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				if bad != nil {
					bad(string(k), "", fmt.Errorf("preset key without filter: %w", ErrCorrupt))
				}
				return nil
			}
			id, filter := string(k[:i]), string(k[i+1:])
			val, err := openValue(v)
			if err != nil {
				if bad != nil {
					bad(id, filter, err)
				}
				return nil
			}
			return fn(id, filter, val)
		})
	})
}
