package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// loadPresets returns the stored presets as "client|filter" -> value.
func loadPresets(t *testing.T, s *Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := s.LoadPresets(func(id, filter string, v []byte) error {
		got[id+"|"+filter] = string(v)
		return nil
	}, func(id, filter string, err error) {
		t.Errorf("bad preset %q %q: %v", id, filter, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStore_Presets(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := loadPresets(t, s); len(got) != 0 {
		t.Fatalf("new store has presets %v", got)
	}
	// Client IDs that are prefixes of one another stay apart: the key
	// ends the client ID with 0x00.
	for _, p := range [][3]string{{"dev", "a/#", "1"}, {"dev", "b", "2"}, {"dev-2", "a/#", "3"}, {"de", "x", "4"}} {
		done, wait := syncDone(t)
		s.PutPreset(p[0], p[1], []byte(p[2]), done)
		wait()
	}
	done, wait := syncDone(t)
	s.PutPreset("dev", "b", []byte("5"), done) // replaces
	wait()
	want := map[string]string{"dev|a/#": "1", "dev|b": "5", "dev-2|a/#": "3", "de|x": "4"}
	if got := loadPresets(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("presets %v, want %v", got, want)
	}
	// A session ending does not take its presets along.
	done, wait = syncDone(t)
	s.DeleteSession("dev", done)
	wait()
	done, wait = syncDone(t)
	s.DeletePreset("dev", "a/#", done)
	wait()
	delete(want, "dev|a/#")
	if got := loadPresets(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after deleting one: %v, want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// They survive a restart; deleting all of a client's leaves the rest.
	s = openTest(t, dir, nil)
	if got := loadPresets(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	done, wait = syncDone(t)
	s.DeletePreset("dev", "", done)
	wait()
	delete(want, "dev|b")
	if got := loadPresets(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after deleting dev's: %v, want %v", got, want)
	}
}

func TestStore_PresetCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		done, wait := syncDone(t)
		s.PutPreset(id, "t", []byte{1, 2}, done)
		wait()
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPresets).Put([]byte("a\x00t"), []byte{1, 2, 0, 0, 0, 0})
	})
	db.Close()
	s = openTest(t, dir, nil)
	var bad []string
	var good []string
	s.LoadPresets(func(id, filter string, v []byte) error {
		good = append(good, id)
		return nil
	}, func(id, filter string, err error) {
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("bad preset error %v, want ErrCorrupt", err)
		}
		bad = append(bad, id)
	})
	if fmt.Sprint(good, bad) != "[b] [a]" {
		t.Fatalf("good %v bad %v, want [b] [a]", good, bad)
	}
	if err := s.Check(); err == nil {
		t.Fatal("Check passes a corrupt preset")
	}
}

// MetaOnly writes meta.db of a stopped broker's store, without touching
// its generations, and fails while a broker holds it.
func TestStore_MetaOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, &Options{MetaOnly: true}); err == nil {
		t.Fatal("MetaOnly created a store")
	}
	s, err := Open(dir, &Options{NShards: 4})
	if err != nil {
		t.Fatal(err)
	}
	appendSync(t, s, "pub", "a/b", "x")
	done, wait := syncDone(t)
	s.PutRetained("r", []byte("v"), done)
	wait()
	if _, err := Open(dir, &Options{MetaOnly: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("MetaOnly while the store is open: %v, want ErrLocked", err)
	}
	s.Close()
	gens, _ := filepath.Glob(filepath.Join(dir, "gen-*.db"))
	before := map[string]int64{}
	for _, g := range gens {
		fi, _ := os.Stat(g)
		before[g] = fi.ModTime().UnixNano()
	}

	m, err := Open(dir, &Options{MetaOnly: true, NShards: 16}) // the store's 4 apply
	if err != nil {
		t.Fatal(err)
	}
	if m.NShards() != 4 {
		t.Errorf("MetaOnly NShards %d, want the store's 4", m.NShards())
	}
	done, wait = syncDone(t)
	m.PutPreset("dev", "cmd/#", []byte{1, 1}, done)
	wait()
	done, wait = syncDone(t)
	m.DeleteRetained("r", done)
	wait()
	errc := make(chan error, 1)
	m.Append("pub", "a/b", []byte("m"), nil, func(_ RecordID, err error) { errc <- err })
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Append on a MetaOnly store: %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, g := range gens {
		if fi, err := os.Stat(g); err != nil || fi.ModTime().UnixNano() != before[g] {
			t.Errorf("generation %s touched: %v", g, err)
		}
	}

	s = openTest(t, dir, &Options{NShards: 4})
	if got := loadPresets(t, s); got["dev|cmd/#"] != "\x01\x01" {
		t.Errorf("preset written MetaOnly: %v", got)
	}
	n := 0
	s.LoadRetained(func(string, []byte) error { n++; return nil }, nil)
	if n != 0 {
		t.Errorf("%d retained messages after MetaOnly delete, want 0", n)
	}
	if recs := readAll(t, s, s.Streams(func(string) bool { return true })[0].Key); len(recs) != 1 {
		t.Errorf("stored messages after MetaOnly: %d, want 1", len(recs))
	}
}

// A preset or a retained topic too long for a bbolt key fails alone, at
// once, instead of failing the meta commit it would have shared.
func TestStore_PresetAndRetainedKeyTooLong(t *testing.T) {
	s := openTest(t, "", nil)
	long := strings.Repeat("L", 40000)
	if PresetFits(long, "a") || !PresetFits("dev", "a/b") {
		t.Fatal("PresetFits")
	}
	errs := make(chan error, 4)
	s.PutPreset(long, "a", []byte{1, 0}, func(err error) { errs <- err })
	s.PutPreset("dev", long, []byte{1, 0}, func(err error) { errs <- err })
	s.PutRetained(long, []byte("v"), func(err error) { errs <- err })
	s.PutPreset("dev", "a/b", []byte{1, 0}, func(err error) { errs <- err })
	expectTooLong(t, errs, 3, 1)
	if got := loadPresets(t, s); len(got) != 1 || got["dev|a/b"] != "\x01\x00" {
		t.Fatalf("stored presets %q", got)
	}
}
