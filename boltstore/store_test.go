package boltstore

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openTest opens a store in a fresh directory and checks its integrity
// when the test ends.
func openTest(t *testing.T, dir string, o *Options) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil && !t.Failed() && !strings.Contains(t.Name(), "Corrupt") {
			t.Errorf("integrity check: %v", err)
		}
		s.Close()
	})
	return s
}

// appendSync appends and waits for the commit.
func appendSync(t *testing.T, s *Store, pub, topic, payload string) RecordID {
	t.Helper()
	type res struct {
		id  RecordID
		err error
	}
	ch := make(chan res, 1)
	s.Append(pub, topic, []byte("m"), []byte(payload), func(id RecordID, err error) { ch <- res{id, err} })
	r := <-ch
	if r.err != nil {
		t.Fatalf("append %s: %v", topic, r.err)
	}
	return r.id
}

func readAll(t *testing.T, s *Store, k StreamKey) []Record {
	t.Helper()
	recs, err := s.Read(k, 0, 1<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestStore_AppendReadRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{NShards: 16})
	if err != nil {
		t.Fatal(err)
	}
	site := s.Site()
	var ids []RecordID
	for i := 0; i < 10; i++ {
		ids = append(ids, appendSync(t, s, "pub-1", "sensors/a/temp", fmt.Sprint(i)))
	}
	for i, id := range ids {
		if id.Seq != uint64(i+1) || id.Site != site || id.Shard != ShardOf("pub-1", 16) {
			t.Fatalf("id %d: %+v", i, id)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, &Options{NShards: 16})
	if s.Site() != site {
		t.Fatal("site ID changed across restart")
	}
	recs := readAll(t, s, ids[0].StreamKey)
	if len(recs) != 10 {
		t.Fatalf("%d records after restart, want 10", len(recs))
	}
	for i, r := range recs {
		if string(r.Payload) != fmt.Sprint(i) || r.Topic != "sensors/a/temp" || string(r.Meta) != "m" || r.ID != ids[i] {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// Sequence numbers continue after the restart.
	if id := appendSync(t, s, "pub-1", "sensors/a/temp", "x"); id.Seq != 11 {
		t.Fatalf("seq after restart %d, want 11", id.Seq)
	}
	// Reads after a cursor.
	if recs, _ := s.Read(ids[0].StreamKey, 8, 100, nil, nil); len(recs) != 3 || recs[0].ID.Seq != 9 {
		t.Fatalf("read after 8: %+v", recs)
	}
}

func TestStore_GroupCommitManyPublishers(t *testing.T) {
	s := openTest(t, "", &Options{BatchSize: 64})
	const pubs, each = 10, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := make(map[RecordID]bool)
	for p := 0; p < pubs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				done := make(chan struct{})
				s.Append(fmt.Sprintf("pub-%d", p), fmt.Sprintf("t/%d", p), nil, []byte("x"), func(id RecordID, err error) {
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					if seen[id] {
						t.Errorf("duplicate id %v", id)
					}
					seen[id] = true
					mu.Unlock()
					close(done)
				})
				<-done
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Records != pubs*each || len(seen) != pubs*each {
		t.Fatalf("records %d, ids %d, want %d", st.Records, len(seen), pubs*each)
	}
	if st.Commits >= st.Records {
		t.Fatalf("%d commits for %d records: no grouping", st.Commits, st.Records)
	}
}

func TestStore_StreamLearning(t *testing.T) {
	s := openTest(t, "", nil)
	keys := make(map[StreamKey]bool)
	for i := 0; i < 40; i++ {
		id := appendSync(t, s, "same-publisher", fmt.Sprintf("sensors/%d/temp", i), "v")
		keys[id.StreamKey] = true
	}
	// 16 distinct values get their own stream, the rest share one.
	if len(keys) != maxFanout+1 {
		t.Fatalf("%d streams for 40 topics, want %d", len(keys), maxFanout+1)
	}
	var wild []StreamInfo
	for _, si := range s.Streams(nil) {
		if si.Pattern == "sensors/+/temp" {
			wild = append(wild, si)
		}
	}
	if len(wild) != 1 || wild[0].Head != 40-maxFanout {
		t.Fatalf("wildcard stream %+v", wild)
	}
	// A session filtering streams sees only what can match.
	got := s.Streams(func(p string) bool { return strings.HasPrefix(p, "other/") })
	if len(got) != 0 {
		t.Fatalf("streams for other/#: %+v", got)
	}
}

func TestStore_ShardsFixedAtCreation(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{NShards: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, &Options{NShards: 8}); !errors.Is(err, ErrShards) {
		t.Fatalf("reopen with 8 shards: %v, want ErrShards", err)
	}
}

func TestStore_RetentionDropsGenerations(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	dir := t.TempDir()
	s := openTest(t, dir, &Options{GenerationInterval: time.Hour, Retention: 2 * time.Hour, Now: clock})
	first := appendSync(t, s, "p", "a/b", "old")
	putSync(t, func(d func(error)) { s.PutCursors("sess", map[StreamKey]uint64{first.StreamKey: 1}, d) })
	var last RecordID
	for i := 0; i < 4; i++ {
		advance(time.Hour)
		last = appendSync(t, s, "p", "a/b", "new")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "gen-*.db"))
	if len(files) != 3 {
		t.Fatalf("%d generation files after 4h with 2h retention: %v", len(files), files)
	}
	if _, err := os.Stat(s.genPath(first.Gen)); !os.IsNotExist(err) {
		t.Fatalf("first generation still on disk: %v", err)
	}
	if recs := readAll(t, s, first.StreamKey); len(recs) != 0 {
		t.Fatalf("dropped generation still readable: %d records", len(recs))
	}
	if in := s.Info(); len(in.Generations) != 3 {
		t.Fatalf("info lists %d generations", len(in.Generations))
	}
	// A session's cursors into a dropped generation go at its next save,
	// so they do not pile up generation after generation.
	if s.HasGen(first.Gen) || !s.HasGen(last.Gen) {
		t.Fatalf("HasGen: dropped %v, newest %v", s.HasGen(first.Gen), s.HasGen(last.Gen))
	}
	putSync(t, func(d func(error)) {
		s.PutCursors("sess", map[StreamKey]uint64{first.StreamKey: 1, last.StreamKey: 1}, d)
	})
	cur, err := s.LoadCursors("sess")
	if err != nil || len(cur) != 1 || cur[last.StreamKey] != 1 {
		t.Fatalf("cursors after a save: %v, %v; want only the newest generation's", cur, err)
	}
}

func TestStore_QuotaRefusesWrites(t *testing.T) {
	s := openTest(t, "", &Options{MaxBytes: 1})
	err := make(chan error, 1)
	s.Append("p", "t", nil, []byte("x"), func(_ RecordID, e error) { err <- e })
	if e := <-err; !errors.Is(e, ErrQuota) {
		t.Fatalf("append over quota: %v", e)
	}
	if s.Stats().Refused != 1 {
		t.Fatal("refusal not counted")
	}
}

func TestStore_CorruptRecordDetected(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := appendSync(t, s, "p", "t/x", "PAYLOAD-TO-FLIP")
	appendSync(t, s, "p", "t/x", "second")
	s.Close()
	// Flip a byte of the first payload in the file.
	path := filepath.Join(dir, fmt.Sprintf("gen-%08d.db", id.Gen))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt copies pages on write, so older copies of the record may
	// sit in free pages too: flip every one.
	n := 0
	for i := strings.Index(string(b), "PAYLOAD-TO-FLIP"); i >= 0; i = strings.Index(string(b), "PAYLOAD-TO-FLIP") {
		b[i] ^= 0xff
		n++
	}
	if n == 0 {
		t.Fatal("payload not found in file")
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var bad []RecordID
	recs, err := s.Read(id.StreamKey, 0, 10, nil, func(rid RecordID, _ error) { bad = append(bad, rid) })
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || string(recs[0].Payload) != "second" {
		t.Fatalf("read returned %+v: the corrupt record must be skipped, the next one returned", recs)
	}
	if len(bad) != 1 || bad[0] != id {
		t.Fatalf("corrupt records reported: %v, want %v", bad, id)
	}
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check: %v, want ErrCorrupt", err)
	}
}

func TestStore_SessionsCursorsRetained(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(f func(done func(error))) {
		t.Helper()
		ch := make(chan error, 1)
		f(func(err error) { ch <- err })
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	k := appendSync(t, s, "p", "x/y", "v").StreamKey // cursors are kept for stored generations only
	wait(func(d func(error)) { s.PutSession("dev-1", "state", []byte("state-1"), d) })
	wait(func(d func(error)) { s.PutSession("dev-1", "inflight", []byte("if-1"), d) })
	wait(func(d func(error)) { s.PutSession("dev-2", "state", []byte("state-2"), d) })
	wait(func(d func(error)) { s.PutCursors("dev-1", map[StreamKey]uint64{k: 42}, d) })
	wait(func(d func(error)) { s.PutRetained("a/b", []byte("r"), d) })
	s.Close()

	s = openTest(t, dir, nil)
	got := map[string]map[string][]byte{}
	s.LoadSessions(func(id string, parts map[string][]byte) error { got[id] = parts; return nil }, nil)
	if len(got) != 2 || string(got["dev-1"]["state"]) != "state-1" || string(got["dev-1"]["inflight"]) != "if-1" || len(got["dev-2"]) != 1 {
		t.Fatalf("sessions %v", got)
	}
	cur, err := s.LoadCursors("dev-1")
	if err != nil || cur[k] != 42 || len(cur) != 1 {
		t.Fatalf("cursors %v %v", cur, err)
	}
	if c2, _ := s.LoadCursors("dev-"); len(c2) != 0 {
		t.Fatalf("cursor prefix leaked: %v", c2)
	}
	wait(func(d func(error)) { s.DeleteSession("dev-1", d) })
	if cur, _ := s.LoadCursors("dev-1"); len(cur) != 0 {
		t.Fatalf("cursors survive DeleteSession: %v", cur)
	}
	if s.SessionCount() != 1 {
		t.Fatalf("session count %d", s.SessionCount())
	}
	var ret []string
	s.LoadRetained(func(topic string, v []byte) error { ret = append(ret, topic+"="+string(v)); return nil }, nil)
	if len(ret) != 1 || ret[0] != "a/b=r" {
		t.Fatalf("retained %v", ret)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, for
// disk-full tests; it skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs for a disk-full test (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A full disk fails appends with an error, never a false
// acknowledgement; every acknowledged record survives, and writes work
// again once space returns.
func TestStore_DiskFull(t *testing.T) {
	dir := mountTmpfs(t, 4<<20)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "ds"), nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("x", 1000)
	var acked []RecordID
	var failure error
	for i := 0; i < 10000 && failure == nil; i++ {
		ch := make(chan error, 1)
		s.Append("p", "full/t", nil, []byte(payload), func(id RecordID, err error) {
			if err == nil {
				acked = append(acked, id)
			}
			ch <- err
		})
		failure = <-ch
	}
	if failure == nil {
		t.Fatal("10 MB appended to a 4 MiB filesystem without an error")
	}
	t.Logf("disk full after %d records: %v", len(acked), failure)
	if s.Stats().Failed == 0 {
		t.Fatal("failure not counted")
	}
	// Space comes back: writes work again without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	acked = append(acked, appendSync(t, s, "p", "full/t", "after"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, filepath.Join(dir, "ds"), nil)
	recs := readAll(t, s, acked[0].StreamKey)
	if len(recs) != len(acked) {
		t.Fatalf("%d records readable, %d acknowledged", len(recs), len(acked))
	}
	for i, r := range recs {
		if r.ID != acked[i] {
			t.Fatalf("record %d is %v, acknowledged %v", i, r.ID, acked[i])
		}
	}
}

func TestStore_OnceKeysCommitWithTheirRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	s.AppendOnce("pub", "t", nil, []byte("a"), []byte("pub\x00\x00\x07"), AppendFunc(func(_ RecordID, err error) { done <- err }))
	s.AppendOnce("pub", "t", nil, []byte("b"), []byte("pub\x00\x00\x08"), AppendFunc(func(_ RecordID, err error) { done <- err }))
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	s.Forget([]byte("pub\x00\x00\x07"), func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, nil)
	keys, err := s.OnceKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || string(keys[0]) != "pub\x00\x00\x08" {
		t.Fatalf("once keys after restart: %q, want only packet 8", keys)
	}
}

// TestStore_KeyTooLongFailsAlone: a write whose client ID a bbolt key
// cannot hold fails at once, and does not fail the other writes it
// would have shared a commit with.
func TestStore_KeyTooLongFailsAlone(t *testing.T) {
	s := openTest(t, "", nil)
	long := strings.Repeat("L", 40000)
	errs := make(chan error, 4)
	s.PutSession(long, "state", []byte("x"), func(err error) { errs <- err })
	s.PutSession("short", "state", []byte("y"), func(err error) { errs <- err })
	s.PutCursors(long, map[StreamKey]uint64{}, func(err error) { errs <- err })
	s.AppendOnce("p", "a/b", nil, []byte("z"), []byte(long), AppendFunc(func(_ RecordID, err error) { errs <- err }))
	expectTooLong(t, errs, 3, 1)
	var ids []string
	s.LoadSessions(func(id string, _ map[string][]byte) error { ids = append(ids, id); return nil }, nil)
	if len(ids) != 1 || ids[0] != "short" {
		t.Fatalf("stored sessions %q", ids)
	}
}

// expectTooLong reads the results of tooLong+ok writes from errs and
// checks that tooLong failed with ErrKeyTooLong and ok succeeded.
func expectTooLong(t *testing.T, errs <-chan error, tooLong, ok int) {
	t.Helper()
	var gotTooLong, gotOK int
	for range tooLong + ok {
		switch err := <-errs; {
		case errors.Is(err, ErrKeyTooLong):
			gotTooLong++
		case err == nil:
			gotOK++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if gotTooLong != tooLong || gotOK != ok {
		t.Fatalf("%d too long, %d ok; want %d and %d", gotTooLong, gotOK, tooLong, ok)
	}
}

// A GroupDone function gets each batch's AppendDone calls to make, on
// the writer's goroutine: every answer comes inside one, a group per
// commit.
func TestStore_GroupDone(t *testing.T) {
	s := openTest(t, "", &Options{BatchSize: 64})
	var inGroup atomic.Bool
	var groups atomic.Int64
	s.GroupDone(func(calls func()) {
		groups.Add(1)
		inGroup.Store(true)
		calls()
		inGroup.Store(false)
	})
	const n = 200
	var wg sync.WaitGroup
	var outside atomic.Int64
	for i := range n {
		wg.Add(1)
		s.Append("p", "g/t", nil, []byte{byte(i)}, func(_ RecordID, err error) {
			if err != nil {
				t.Error(err)
			}
			if !inGroup.Load() {
				outside.Add(1)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if outside.Load() != 0 {
		t.Fatalf("%d answers outside a group", outside.Load())
	}
	if g, c := groups.Load(), int64(s.Stats().Commits); g != c || g >= n {
		t.Fatalf("%d groups for %d commits of %d appends", g, c, n)
	}
	s.GroupDone(nil)
	appendSync(t, s, "p", "g/t", "after")
	if groups.Load() != int64(s.Stats().Commits)-1 {
		t.Fatal("a removed group function still called")
	}
}
