package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// appendBatch appends the payloads to topics[i%len(topics)] without
// waiting between them, so that they share commits, and returns each
// one's ID in order.
func appendBatch(t *testing.T, s *Store, topics []string, n int) []RecordID {
	t.Helper()
	ids := make([]RecordID, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		s.Append("pub", topics[i%len(topics)], []byte("m"), fmt.Appendf(nil, "payload-%d", i), func(id RecordID, err error) {
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			ids[i] = id
			wg.Done()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// genFile returns the path of the generation file holding id.
func genFile(dir string, id RecordID) string {
	return filepath.Join(dir, fmt.Sprintf("gen-%08d.db", id.Gen))
}

// streamKeys returns the keys of a stream's bucket, read from its
// generation file while the store is closed.
func streamKeys(t *testing.T, dir string, id RecordID) []uint64 {
	t.Helper()
	db, err := bolt.Open(genFile(dir, id), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys []uint64
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(id.bucketName()).ForEach(func(k, _ []byte) error {
			keys = append(keys, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	return keys
}

// rewriteValue replaces the stream value under key in the closed store's
// generation file with what change makes of it.
func rewriteValue(t *testing.T, dir string, id RecordID, key uint64, change func([]byte) []byte) {
	t.Helper()
	db, err := bolt.Open(genFile(dir, id), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(id.bucketName())
		v := b.Get(seqKey(key))
		if v == nil {
			return fmt.Errorf("no value under %d", key)
		}
		return b.Put(seqKey(key), change(append([]byte(nil), v...)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore_BlocksReadFromAnyRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{BatchSize: 1000, FlushInterval: 20 * time.Millisecond})
	const n = 300
	ids := appendBatch(t, s, []string{"a/x", "b/y"}, n)
	a, b := ids[0].StreamKey, ids[1].StreamKey
	if a == b {
		t.Fatal("a/x and b/y share a stream")
	}
	for i, id := range ids {
		if want := uint64(i/2 + 1); id.Seq != want {
			t.Fatalf("append %d got seq %d, want %d", i, id.Seq, want)
		}
	}
	// Every read position, with limits that end inside blocks.
	for _, max := range []int{1, 7, n} {
		for after := uint64(0); after <= n/2; after++ {
			recs, err := s.Read(a, after, max, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := min(n/2-int(after), max)
			if len(recs) != want {
				t.Fatalf("read after %d, max %d: %d records, want %d", after, max, len(recs), want)
			}
			for j, r := range recs {
				seq := after + 1 + uint64(j)
				if r.ID != (RecordID{StreamKey: a, Seq: seq}) || string(r.Payload) != fmt.Sprintf("payload-%d", 2*(seq-1)) ||
					r.Topic != "a/x" || string(r.Meta) != "m" {
					t.Fatalf("read after %d: record %d is %v %q %q", after, j, r.ID, r.Topic, r.Payload)
				}
			}
		}
	}
	// Times follow the order of the appends across both streams.
	all := append(readAll(t, s, a), readAll(t, s, b)...)
	times := make(map[string]int64)
	for _, r := range all {
		times[string(r.Payload)] = r.Time
	}
	for i := 1; i < n; i++ {
		if times[fmt.Sprintf("payload-%d", i)] <= times[fmt.Sprintf("payload-%d", i-1)] {
			t.Fatalf("append %d has time %d, not after append %d's", i, times[fmt.Sprintf("payload-%d", i)], i-1)
		}
	}
	s.Close()

	// A key per block, each the block's last record; a commit's records
	// of one stream in blocks of at most maxStreamBlockBytes.
	keys := streamKeys(t, dir, ids[0])
	if len(keys) < 2 || len(keys) > 20 || keys[len(keys)-1] != n/2 {
		t.Fatalf("stream a's keys %v: want a few blocks ending at %d", keys, n/2)
	}

	// The heads come back from the last keys.
	s = openTest(t, dir, nil)
	if id := appendSync(t, s, "pub", "a/x", "after restart"); id.Seq != n/2+1 {
		t.Fatalf("after restart the next record is %d, want %d", id.Seq, n/2+1)
	}
	if recs := readAll(t, s, a); len(recs) != n/2+1 || string(recs[n/2].Payload) != "after restart" {
		t.Fatalf("after restart stream a reads %d records", len(recs))
	}
}

// seqs returns from..to.
func seqs(from, to uint64) []uint64 {
	var out []uint64
	for seq := from; seq <= to; seq++ {
		out = append(out, seq)
	}
	return out
}

func TestStore_CorruptBlock(t *testing.T) {
	// The records of payload-0 to payload-9 take 32 bytes, each after a
	// 4-byte length, from offset 2: the fifth record's length is at
	// 2+4*36.
	const fifth = 2 + 4*36
	cases := []struct {
		name   string
		change func(v []byte) []byte
		after  uint64   // where Read starts
		read   []uint64 // the records returned
		bad    []uint64 // the records reported
	}{
		// The rest of the block cannot be found.
		{"length", func(v []byte) []byte { v[fifth] ^= 0x40; return v }, 0, seqs(1, 4), []uint64{5}},
		// A reader past the damage still hears of the records it loses.
		{"length before after", func(v []byte) []byte { v[fifth] ^= 0x40; return v }, 10, nil, []uint64{11}},
		{"record", func(v []byte) []byte { v[fifth+4+12] ^= 0xff; return v }, 0, append(seqs(1, 4), seqs(6, 20)...), []uint64{5}},
		// Every record is checked under a sequence number one too high.
		{"count", func(v []byte) []byte { v[1]--; return v }, 0, nil, seqs(2, 20)},
		{"count over the key", func(v []byte) []byte { v[1] = 21; return v }, 0, nil, []uint64{20}},
		// Read whole, but Check says so.
		{"bytes past the records", func(v []byte) []byte { return append(v, 0) }, 0, seqs(1, 20), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, &Options{BatchSize: 1000, FlushInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ids := appendBatch(t, s, []string{"c/z"}, 20)
			s.Close()
			if keys := streamKeys(t, dir, ids[0]); len(keys) != 1 || keys[0] != 20 {
				t.Fatalf("keys %v: want one block under 20", keys)
			}
			rewriteValue(t, dir, ids[0], 20, tc.change)

			s, err = Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var bad []uint64
			recs, err := s.Read(ids[0].StreamKey, tc.after, 100, nil, func(id RecordID, err error) {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("record %v reported with %v, want ErrCorrupt", id, err)
				}
				bad = append(bad, id.Seq)
			})
			if err != nil {
				t.Fatal(err)
			}
			var read []uint64
			for _, r := range recs {
				read = append(read, r.ID.Seq)
				if want := fmt.Sprintf("payload-%d", r.ID.Seq-1); string(r.Payload) != want {
					t.Fatalf("record %d has payload %q, want %q", r.ID.Seq, r.Payload, want)
				}
			}
			if !slices.Equal(read, tc.read) || !slices.Equal(bad, tc.bad) {
				t.Fatalf("read %v and reported %v, want %v and %v", read, bad, tc.read, tc.bad)
			}
			if err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestStore_ReadsSingleRecordValues(t *testing.T) {
	// Stores written before blocks hold one record per key (version 1):
	// they read as before, and new records follow them in blocks.
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := appendSync(t, s, "pub", "d/w", "block")
	s.Close()
	db, err := bolt.Open(genFile(dir, first), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(first.bucketName())
		for seq := uint64(2); seq <= 3; seq++ {
			v := encodeRecord(nil, seqKey(seq), time.Now().UnixNano(), "d/w", []byte("m"), fmt.Appendf(nil, "single-%d", seq))
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, nil)
	if id := appendSync(t, s, "pub", "d/w", "block again"); id.Seq != 4 {
		t.Fatalf("next record %d, want 4", id.Seq)
	}
	want := []string{"block", "single-2", "single-3", "block again"}
	for after := range want {
		recs, err := s.Read(first.StreamKey, uint64(after), 10, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want)-after {
			t.Fatalf("read after %d: %d records", after, len(recs))
		}
		for j, r := range recs {
			if string(r.Payload) != want[after+j] || r.ID.Seq != uint64(after+j+1) {
				t.Fatalf("read after %d: record %v %q, want %q", after, r.ID, r.Payload, want[after+j])
			}
		}
	}
}
