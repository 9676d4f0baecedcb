package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// matchFilter is enough topic matching for these tests: a filter is a
// topic, or a prefix and a last "#", and "#" alone does not take "$"
// topics. The broker's MatchTopic is the real one; boltstore cannot
// import it.
func matchFilter(filter, topic string) bool {
	prefix, wild := strings.CutSuffix(filter, "#")
	switch {
	case !wild:
		return filter == topic
	case prefix == "":
		return !strings.HasPrefix(topic, "$")
	}
	return strings.HasPrefix(topic+"/", prefix)
}

func openTestArchive(t *testing.T, dir string, o ArchiveOptions) *Archive {
	t.Helper()
	if o.Match == nil {
		o.Match = matchFilter
	}
	a, err := OpenArchive(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// addSync adds a message and waits for its commit.
func addSync(t *testing.T, a *Archive, topic, payload string) uint64 {
	t.Helper()
	type res struct {
		id  uint64
		err error
	}
	ch := make(chan res, 1)
	rule := a.Rule(topic)
	if rule < 0 {
		t.Fatalf("no rule for %s", topic)
	}
	a.Add(rule, topic, []byte("meta:"+topic), []byte(payload), func(id uint64, err error) { ch <- res{id, err} })
	r := <-ch
	if r.err != nil {
		t.Fatalf("add %s: %v", topic, r.err)
	}
	return r.id
}

// listAll pages through q and returns every record, checking that
// pages are in order and no page is larger than asked.
func listAll(t *testing.T, a *Archive, q ArchiveQuery) []ArchiveRecord {
	t.Helper()
	var out []ArchiveRecord
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("listing does not end")
		}
		p, err := a.List(q)
		if err != nil {
			t.Fatal(err)
		}
		if q.Limit > 0 && len(p.Records) > q.Limit {
			t.Fatalf("page of %d records, limit %d", len(p.Records), q.Limit)
		}
		out = append(out, p.Records...)
		if p.Next == 0 {
			break
		}
		q.After = p.Next
	}
	for i := 1; i < len(out); i++ {
		if (out[i].ID > out[i-1].ID) == q.Newest || out[i].ID == out[i-1].ID {
			t.Fatalf("records out of order at %d: %d then %d (newest %v)", i, out[i-1].ID, out[i].ID, q.Newest)
		}
	}
	return out
}

func payloads(recs []ArchiveRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Payload))
	}
	return out
}

func TestArchive_ListPagesAndGet(t *testing.T) {
	clock := newTestClock()
	a := openTestArchive(t, t.TempDir(), ArchiveOptions{Rules: []ArchiveRule{{Filter: "sensors/#"}}, Now: clock.Now})
	var ids []uint64
	var wantA, wantAll []string
	for i := range 15 {
		topic := "sensors/a"
		if i%3 == 2 {
			topic = "sensors/b"
		}
		p := fmt.Sprintf("%s-%d", topic, i)
		ids = append(ids, addSync(t, a, topic, p))
		if topic == "sensors/a" {
			wantA = append(wantA, p)
		}
		wantAll = append(wantAll, p)
		clock.advance(time.Second)
	}
	if r := a.Rule("other/x"); r != -1 {
		t.Fatalf("Rule(other/x) = %d", r)
	}
	// Exact topic through the index, both directions, pages of 3.
	got := listAll(t, a, ArchiveQuery{Topic: "sensors/a", Limit: 3})
	if !slices.Equal(payloads(got), wantA) {
		t.Fatalf("oldest first: %v, want %v", payloads(got), wantA)
	}
	got = listAll(t, a, ArchiveQuery{Topic: "sensors/a", Limit: 3, Newest: true})
	if want := slices.Clone(wantA); !slices.Equal(payloads(got), reversed(want)) {
		t.Fatalf("newest first: %v", payloads(got))
	}
	// A filter scans.
	got = listAll(t, a, ArchiveQuery{Match: func(tp string) bool { return matchFilter("sensors/#", tp) }, Limit: 4})
	if !slices.Equal(payloads(got), wantAll) {
		t.Fatalf("filter: %v", payloads(got))
	}
	// A time range: messages 5 to 9 (From included, To excluded).
	q := ArchiveQuery{Match: func(string) bool { return true }, From: ids[5], To: ids[10], Limit: 2}
	if got = listAll(t, a, q); !slices.Equal(payloads(got), wantAll[5:10]) {
		t.Fatalf("range: %v", payloads(got))
	}
	q.Newest = true
	if got = listAll(t, a, q); !slices.Equal(payloads(got), reversed(slices.Clone(wantAll[5:10]))) {
		t.Fatalf("range newest first: %v", payloads(got))
	}
	// IDs are the arrival times.
	if !time.Unix(0, int64(ids[0])).Equal(clock.Now().Add(-15 * time.Second)) {
		t.Fatalf("ID %d is not the arrival time %v", ids[0], clock.Now().Add(-15*time.Second))
	}
	// The last page knows it is the last: no empty page after it.
	p, err := a.List(ArchiveQuery{Topic: "sensors/b", Limit: 5})
	if err != nil || len(p.Records) != 5 || p.Next != 0 {
		t.Fatalf("exactly one full page: %d records, next %d, %v", len(p.Records), p.Next, err)
	}

	r, err := a.Get(ids[4])
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != ids[4] || r.Topic != "sensors/a" || string(r.Meta) != "meta:sensors/a" || string(r.Payload) != "sensors/a-4" || r.Rule != "sensors/#" {
		t.Fatalf("get: %+v", r)
	}
	if _, err := a.Get(ids[4] + 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing ID: %v", err)
	}
}

func reversed(s []string) []string {
	slices.Reverse(s)
	return s
}

func TestArchive_RestartKeepsMessagesAndIDsGrow(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	o := ArchiveOptions{Rules: []ArchiveRule{{Filter: "#"}}, Now: clock.Now, Match: matchFilter}
	a, err := OpenArchive(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	first := addSync(t, a, "a/b", "before")
	// Queued, not synced: Close commits it.
	a.Add(a.Rule("a/b"), "a/b", nil, []byte("queued"), nil)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	clock.advance(-time.Hour) // the clock steps back across the restart
	a = openTestArchive(t, dir, o)
	second := addSync(t, a, "a/b", "after")
	if second <= first {
		t.Fatalf("ID after restart %d not above %d", second, first)
	}
	got := listAll(t, a, ArchiveQuery{Topic: "a/b"})
	if !slices.Equal(payloads(got), []string{"before", "queued", "after"}) {
		t.Fatalf("after restart: %v", payloads(got))
	}
}

func TestArchive_MessageStoredOnceUnderLongestRetention(t *testing.T) {
	a := openTestArchive(t, t.TempDir(), ArchiveOptions{Rules: []ArchiveRule{
		{Filter: "a/#", Retention: time.Hour},
		{Filter: "a/b/#", Retention: 48 * time.Hour},
		{Filter: "#", Retention: 24 * time.Hour},
		{Filter: "$SYS/#", Retention: time.Hour},
	}})
	for _, tc := range []struct {
		topic string
		rule  int
	}{{"a/b/c", 1}, {"a/b", 1}, {"a/x", 2}, {"z", 2}, {"$SYS/broker/uptime", 3}, {"$other", -1}} {
		if r := a.Rule(tc.topic); r != tc.rule {
			t.Errorf("Rule(%q) = %d, want %d", tc.topic, r, tc.rule)
		}
	}
	addSync(t, a, "a/b/c", "1")
	addSync(t, a, "a/x", "2")
	all := listAll(t, a, ArchiveQuery{Match: func(string) bool { return true }})
	if !slices.Equal(payloads(all), []string{"1", "2"}) {
		t.Fatalf("listed %v: each message once", payloads(all))
	}
	if all[0].Rule != "a/b/#" || all[1].Rule != "#" {
		t.Fatalf("rules %q %q", all[0].Rule, all[1].Rule)
	}
	counts := map[string]uint64{}
	for _, r := range a.Info().Rules {
		counts[r.Filter] = r.Messages
	}
	if counts["a/b/#"] != 1 || counts["#"] != 1 || counts["a/#"] != 0 {
		t.Fatalf("messages per rule: %v", counts)
	}
}

func TestArchive_RetentionDropsOldestSegments(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	// 16 minutes of retention: one segment a minute.
	a := openTestArchive(t, dir, ArchiveOptions{Rules: []ArchiveRule{{Filter: "#", Retention: 16 * time.Minute}}, Now: clock.Now})
	var ids []uint64
	for i := range 80 { // 40 minutes, one message every 30s
		ids = append(ids, addSync(t, a, "t", fmt.Sprint(i)))
		clock.advance(30 * time.Second)
	}
	cutoff := uint64(clock.Now().Add(-16 * time.Minute).UnixNano())
	var want []string
	for i, id := range ids {
		if id >= cutoff {
			want = append(want, fmt.Sprint(i))
		}
	}
	// Past retention is never listed, even before its segment goes.
	got := listAll(t, a, ArchiveQuery{Topic: "t", Limit: 7})
	if !slices.Equal(payloads(got), want) {
		t.Fatalf("listed %v, want %v", payloads(got), want)
	}
	if _, err := a.Get(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an expired message: %v", err)
	}
	// Segments go whole: what is left starts within a segment of the cutoff.
	a.maintain()
	segs := a.Info().Rules[0].Segments
	files, _ := filepath.Glob(filepath.Join(dir, "r-*", "seg-*.db"))
	if len(files) != len(segs) || len(segs) < 16 || len(segs) > 18 {
		t.Fatalf("%d segments (%d files) for 16 minutes in 1-minute segments", len(segs), len(files))
	}
	if segs[0].Last < cutoff || segs[0].First > cutoff+uint64(time.Minute) {
		t.Fatalf("oldest segment %d..%d, cutoff %d", segs[0].First, segs[0].Last, cutoff)
	}
	if st := a.Stats(); st.Expired == 0 || st.Expired+a.Info().Messages != 80 {
		t.Fatalf("expired %d + kept %d != 80", st.Expired, a.Info().Messages)
	}
	// Idle past retention: everything goes, files too.
	clock.advance(17 * time.Minute)
	a.maintain()
	if files, _ := filepath.Glob(filepath.Join(dir, "r-*", "seg-*.db")); len(files) != 0 {
		t.Fatalf("files left after retention: %v", files)
	}
	addSync(t, a, "t", "new")
	if got := listAll(t, a, ArchiveQuery{Topic: "t"}); !slices.Equal(payloads(got), []string{"new"}) {
		t.Fatalf("after an idle period: %v", payloads(got))
	}
}

func ruleDirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "r-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func TestArchive_MaxBytesDropsOldest(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	const cap = 1 << 20
	a := openTestArchive(t, dir, ArchiveOptions{Rules: []ArchiveRule{{Filter: "#", MaxBytes: cap}}, Now: clock.Now})
	payload := strings.Repeat("x", 1000)
	const n = 6000
	rule := a.Rule("big/t")
	for i := range n {
		a.Add(rule, "big/t", nil, []byte(fmt.Sprintf("%05d%s", i, payload)), nil)
		clock.advance(time.Millisecond)
		if i%2000 == 1999 { // batches of up to 2 MB: twice the cap
			if err := a.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		// Never over the cap, even while a batch is being written.
		if i%50 == 0 {
			if got := ruleDirBytes(t, dir); got > cap {
				t.Fatalf("after %d messages the rule's files are %d bytes, cap %d", i+1, got, cap)
			}
		}
	}
	got := listAll(t, a, ArchiveQuery{Topic: "big/t", Limit: 500})
	if len(got) == 0 || len(got) > 1000 {
		t.Fatalf("%d messages kept under a 1 MiB cap", len(got))
	}
	// The oldest went first: what is left is the newest, without a gap.
	for i, r := range got {
		if want := fmt.Sprintf("%05d", n-len(got)+i); string(r.Payload[:5]) != want {
			t.Fatalf("kept message %d is %s, want %s", i, r.Payload[:5], want)
		}
	}
	if st := a.Stats(); st.Capped+uint64(len(got)) != n || st.Written != n {
		t.Fatalf("capped %d + kept %d, written %d: want %d", st.Capped, len(got), st.Written, n)
	}
}

func TestArchive_CorruptRecordReported(t *testing.T) {
	dir := t.TempDir()
	o := ArchiveOptions{Rules: []ArchiveRule{{Filter: "#"}}, Match: matchFilter}
	a, err := OpenArchive(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	bad := addSync(t, a, "t/x", "PAYLOAD-TO-FLIP")
	addSync(t, a, "t/x", "second")
	a.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "r-*", "seg-*.db"))
	if len(files) != 1 {
		t.Fatalf("segment files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := strings.Index(string(b), "PAYLOAD-TO-FLIP"); i >= 0; i = strings.Index(string(b), "PAYLOAD-TO-FLIP") {
		b[i] ^= 0xff
		n++
	}
	if n == 0 {
		t.Fatal("payload not found in the file")
	}
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	a = openTestArchive(t, dir, o)
	for _, q := range []ArchiveQuery{{Topic: "t/x"}, {Match: func(string) bool { return true }}, {Topic: "t/x", Newest: true}} {
		p, err := a.List(q)
		if err != nil {
			t.Fatal(err)
		}
		if p.Corrupt != 1 || !slices.Equal(payloads(p.Records), []string{"second"}) {
			t.Fatalf("%+v: corrupt %d, records %v", q, p.Corrupt, payloads(p.Records))
		}
	}
	if _, err := a.Get(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get of the corrupt record: %v", err)
	}
	if a.Stats().CorruptRecords != 4 {
		t.Fatalf("corrupt records counted: %d", a.Stats().CorruptRecords)
	}
}

func TestArchive_RemovedRuleKeptUntilItsRetention(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	o := ArchiveOptions{Rules: []ArchiveRule{{Filter: "old/#", Retention: 2 * time.Hour}}, Match: matchFilter, Now: clock.Now}
	a, err := OpenArchive(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	addSync(t, a, "old/x", "kept")
	a.Close()
	o.Rules = []ArchiveRule{{Filter: "new/#"}}
	a = openTestArchive(t, dir, o)
	if a.Rule("old/x") != -1 {
		t.Fatal("a removed rule still takes messages")
	}
	if got := listAll(t, a, ArchiveQuery{Topic: "old/x"}); !slices.Equal(payloads(got), []string{"kept"}) {
		t.Fatalf("removed rule's messages: %v", payloads(got))
	}
	var info ArchiveRuleInfo
	for _, r := range a.Info().Rules {
		if r.Filter == "old/#" {
			info = r
		}
	}
	if info.Configured || info.Retention != 2*time.Hour || info.Messages != 1 {
		t.Fatalf("removed rule: %+v", info)
	}
	clock.advance(3 * time.Hour)
	a.maintain()
	if _, err := os.Stat(filepath.Join(dir, info.Dir)); !os.IsNotExist(err) {
		t.Fatalf("removed rule's directory after its retention: %v", err)
	}
}

func TestArchive_ReadOnly(t *testing.T) {
	dir := t.TempDir()
	o := ArchiveOptions{Rules: []ArchiveRule{{Filter: "#"}}, Match: matchFilter}
	a, err := OpenArchive(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	addSync(t, a, "t", "x")
	// Held by a writer: the read-only tools are told so.
	if _, err := OpenArchive(dir, &ArchiveOptions{ReadOnly: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open of an archive in use: %v", err)
	}
	a.Close()
	ro, err := OpenArchive(dir, &ArchiveOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := listAll(t, ro, ArchiveQuery{Topic: "t"}); !slices.Equal(payloads(got), []string{"x"}) {
		t.Fatalf("read-only list: %v", payloads(got))
	}
	if in := ro.Info(); len(in.Rules) != 1 || in.Rules[0].Filter != "#" || in.Rules[0].Configured {
		t.Fatalf("read-only info: %+v", in)
	}
	errc := make(chan error, 1)
	ro.Add(0, "t", nil, nil, func(_ uint64, err error) { errc <- err })
	if err := <-errc; err == nil {
		t.Fatal("read-only archive took a message")
	}
	if _, err := OpenArchive(filepath.Join(dir, "none"), &ArchiveOptions{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only open of no archive: %v", err)
	}
}

func TestArchive_ConcurrentAddAndList(t *testing.T) {
	a := openTestArchive(t, t.TempDir(), ArchiveOptions{Rules: []ArchiveRule{{Filter: "#"}}, BatchSize: 32})
	const writers, each = 8, 300
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	listed := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				listed <- nil
				return
			default:
			}
			p, err := a.List(ArchiveQuery{Match: func(string) bool { return true }, Newest: true, Limit: 50})
			if err != nil || p.Corrupt != 0 {
				listed <- fmt.Errorf("list while writing: %v, %d corrupt", err, p.Corrupt)
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("w/%d", w)
			rule := a.Rule(topic)
			for i := range each {
				a.Add(rule, topic, nil, []byte(fmt.Sprint(i)), func(id uint64, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil || seen[id] {
						t.Errorf("add: id %d, %v", id, err)
					}
					seen[id] = true
				})
			}
		}()
	}
	wg.Wait()
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-listed; err != nil {
		t.Fatal(err)
	}
	all := listAll(t, a, ArchiveQuery{Match: func(string) bool { return true }, Limit: 1000})
	if len(all) != writers*each || len(seen) != writers*each {
		t.Fatalf("listed %d, acknowledged %d, want %d", len(all), len(seen), writers*each)
	}
	// Each writer's messages are in its order.
	next := map[string]int{}
	for _, r := range all {
		if string(r.Payload) != fmt.Sprint(next[r.Topic]) {
			t.Fatalf("%s: got %s, want %d", r.Topic, r.Payload, next[r.Topic])
		}
		next[r.Topic]++
	}
}

func TestBatcher_BatchesAtMaxOrInterval(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	flushed := make(chan struct{}, 100)
	b := newBatcher(4, 5*time.Millisecond, func(batch []int) {
		mu.Lock()
		sizes = append(sizes, len(batch))
		mu.Unlock()
		flushed <- struct{}{}
	})
	go b.run()
	for i := range 10 {
		if !b.add(i) {
			t.Fatal("add refused")
		}
	}
	b.close()
	if b.add(11) {
		t.Fatal("add after close accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		if n > 4 || n == 0 {
			t.Fatalf("batch of %d, max 4: %v", n, sizes)
		}
		total += n
	}
	if total != 10 {
		t.Fatalf("flushed %d items, want 10: %v", total, sizes)
	}
}

// Messages wait for the writer beyond maxQueuedBytes; one larger than
// it goes alone. None is lost.
func TestArchive_LargeMessagesPassTheMemoryBound(t *testing.T) {
	a := openTestArchive(t, t.TempDir(), ArchiveOptions{Rules: []ArchiveRule{{Filter: "#"}}})
	big := make([]byte, 1<<20)
	huge := make([]byte, maxQueuedBytes+1)
	var mu sync.Mutex
	var ids []uint64
	done := func(id uint64, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Error(err)
		}
		ids = append(ids, id)
	}
	for range 40 {
		a.Add(0, "big", nil, big, done)
	}
	a.Add(0, "big", nil, huge, done)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	a.qmu.Lock()
	queued := a.queued
	a.qmu.Unlock()
	if len(ids) != 41 || queued != 0 {
		t.Fatalf("%d of 41 committed, %d bytes still counted as queued", len(ids), queued)
	}
	p, err := a.List(ArchiveQuery{Topic: "big", Limit: 100, MaxBytes: 64 << 20})
	if err != nil || len(p.Records) != 41 || len(p.Records[40].Payload) != len(huge) {
		t.Fatalf("listed %d, %v", len(p.Records), err)
	}
}

func TestArchive_CorruptBlockLength(t *testing.T) {
	var block []byte
	for i := range 3 {
		block = appendBlockRecord(block, uint64(100+i), int64(100+i), "t", nil, []byte{byte(i)})
	}
	ents := blockEntries(nil, block, 100)
	if len(ents) != 3 || ents[2].id != 102 || ents[2].rec == nil {
		t.Fatalf("entries of a sound block: %+v", ents)
	}
	// The second record's length runs past the block: the first is
	// read, the rest is one corrupt entry.
	_, _, ok := recordAt(block, 0)
	second := 4 + len(ents[0].rec)
	block[second] = 0xff
	ents = blockEntries(nil, block, 100)
	if !ok || len(ents) != 2 || ents[0].rec == nil || ents[1].rec != nil || ents[1].id != 101 {
		t.Fatalf("entries of a block with a bad length: %+v", ents)
	}
	// Looking an ID up: there, past the corrupt length (it may have been
	// there), and before the block.
	if rec, found := recordIn(ents, 100); rec == nil || !found {
		t.Fatal("first record not found")
	}
	if rec, found := recordIn(ents, 102); rec != nil || !found {
		t.Fatalf("a record past the corrupt length: %x %v", rec, found)
	}
	if _, found := recordIn(ents, 99); found {
		t.Fatal("an ID before the block found")
	}
}

// Many topics in large batches: each topic's messages spread over many
// blocks, index entries and segments, listed through the index both
// ways with small pages, and through a scan, equal to what was added.
func TestArchive_IndexAcrossBlocksAndSegments(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	a := openTestArchive(t, dir, ArchiveOptions{Rules: []ArchiveRule{{Filter: "#", Retention: 16 * time.Hour}}, Now: clock.Now})
	want := map[string][]string{}
	var all []string
	for i := range 6000 {
		topic := fmt.Sprintf("dev/%d", (i*7)%13)
		p := fmt.Sprintf("%s-%d-%s", topic, i, strings.Repeat("p", i%300))
		a.Add(a.Rule(topic), topic, nil, []byte(p), nil)
		want[topic] = append(want[topic], p)
		all = append(all, p)
		if i%1000 == 999 {
			if err := a.Sync(); err != nil {
				t.Fatal(err)
			}
			clock.advance(20 * time.Minute) // a segment is an hour: a new one every three syncs
		}
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if segs := len(a.Info().Rules[0].Segments); segs < 2 {
		t.Fatalf("%d segments", segs)
	}
	for topic, w := range want {
		if got := payloads(listAll(t, a, ArchiveQuery{Topic: topic, Limit: 37})); !slices.Equal(got, w) {
			t.Fatalf("%s oldest first: %d messages, want %d", topic, len(got), len(w))
		}
		if got := payloads(listAll(t, a, ArchiveQuery{Topic: topic, Limit: 41, Newest: true})); !slices.Equal(got, reversed(slices.Clone(w))) {
			t.Fatalf("%s newest first: %d messages, want %d", topic, len(got), len(w))
		}
	}
	if got := payloads(listAll(t, a, ArchiveQuery{Match: func(string) bool { return true }, Limit: 500})); !slices.Equal(got, all) {
		t.Fatalf("scan: %d messages, want %d", len(got), len(all))
	}
	if got := payloads(listAll(t, a, ArchiveQuery{Topic: "dev/99"})); len(got) != 0 {
		t.Fatalf("a topic never published: %v", got)
	}
}
