package boltstore

import (
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// StreamInfo describes one stream: its key, the topic pattern it holds
// ("+" where a level had too many values) and its last sequence number.
type StreamInfo struct {
	Key     StreamKey
	Pattern string
	Head    uint64
}

// Streams returns the streams whose pattern match accepts, oldest
// generation first. match decides whether a subscription could want a
// stream's topics; the store knows nothing of topic filters.
func (s *Store) Streams(match func(pattern string) bool) []StreamInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byGen := make(map[Gen]*generation, len(s.gens))
	for _, g := range s.gens {
		byGen[g.id] = g
	}
	var out []StreamInfo
	for k, head := range s.heads {
		g := byGen[k.Gen]
		if g == nil || int(k.Stream) > len(g.lrn.patterns) {
			continue
		}
		p := g.lrn.patterns[k.Stream-1]
		if match == nil || match(p) {
			out = append(out, StreamInfo{Key: k, Pattern: p, Head: head})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		if a.Gen != b.Gen {
			return a.Gen < b.Gen
		}
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		return a.Stream < b.Stream
	})
	return out
}

// Changed returns a channel that is closed at the next commit of
// messages: readers wait on it instead of polling.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Read appends to buf up to max records of stream k with sequence
// numbers above after, in order. A record failing its checksum is never
// returned: it is reported to corrupt (which may be nil) and skipped. A
// stream whose generation was dropped reads as empty.
func (s *Store) Read(k StreamKey, after uint64, max int, buf []Record, corrupt func(RecordID, error)) ([]Record, error) {
	s.mu.RLock()
	var db *bolt.DB
	for _, g := range s.gens {
		if g.id == k.Gen {
			db = g.db
		}
	}
	s.mu.RUnlock()
	if db == nil {
		return buf, nil
	}
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(k.bucketName())
		if b == nil {
			return nil
		}
		c := b.Cursor()
		n := 0
		bad := func(id RecordID, err error) {
			s.noteCorrupt()
			if corrupt != nil {
				corrupt(id, err)
			}
		}
		for key, v := c.Seek(seqKey(after + 1)); key != nil && n < max; key, v = c.Next() {
			if len(key) != 8 {
				bad(RecordID{StreamKey: k}, fmt.Errorf("key of %d bytes: %w", len(key), ErrCorrupt))
				continue
			}
			streamRecords(beUint64(key), v, func(seq uint64, rec []byte) bool {
				if rec == nil {
					// The rest of the block is lost, the records past
					// after with it: report the first of those.
					if seq <= after {
						seq = after + 1
					}
					bad(RecordID{StreamKey: k, Seq: seq}, errCorruptBlock)
					return false
				}
				if seq <= after {
					return true
				}
				id := RecordID{StreamKey: k, Seq: seq}
				r, err := decodeStreamRecord(seq, rec)
				if err != nil {
					bad(id, err)
					return true
				}
				r.ID = id
				buf = append(buf, r)
				n++
				return n < max
			})
		}
		return nil
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return buf, nil // dropped by retention meanwhile
	}
	return buf, err
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func (s *Store) noteCorrupt() {
	s.mu.Lock()
	s.corrupt++
	s.mu.Unlock()
}

// OnceKeys returns the keys recorded by AppendOnce and not released by
// Forget, in every generation still kept.
func (s *Store) OnceKeys() ([][]byte, error) {
	s.mu.RLock()
	gens := append([]*generation(nil), s.gens...)
	s.mu.RUnlock()
	live := make(map[string]bool)
	for _, g := range gens { // oldest first: a later tombstone wins
		err := g.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketOnce)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if len(v) == 0 {
					delete(live, string(k))
				} else {
					live[string(k)] = true
				}
				return nil
			})
		})
		if err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return nil, err
		}
	}
	out := make([][]byte, 0, len(live))
	for k := range live {
		out = append(out, []byte(k))
	}
	return out, nil
}

// HasGen reports whether generation g is stored (not dropped by
// retention, or never written).
func (s *Store) HasGen(g Gen) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.gens), func(i int) bool { return s.gens[i].id >= g })
	return i < len(s.gens) && s.gens[i].id == g
}
