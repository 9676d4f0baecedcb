package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exportDir exports the store in dataDir/ds (opened read-only) at a
// fixed time, so that two exports of the same data are the same text.
func exportDir(t *testing.T, dataDir string) []byte {
	t.Helper()
	s, err := Open(filepath.Join(dataDir, "ds"), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var buf bytes.Buffer
	if _, err := Export(&buf, s.Site(), s.NShards(), time.Unix(1e9, 0), s.Files("ds")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func putSync(t *testing.T, put func(done func(error))) {
	t.Helper()
	errc := make(chan error, 1)
	put(func(err error) { errc <- err })
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestExport_RoundTrip fills a store with records in two generations,
// sessions, cursors, retained messages, assignments and once keys,
// exports it, imports the export into an empty directory and checks
// that the store there reads the same and exports to the same text.
func TestExport_RoundTrip(t *testing.T) {
	src := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	s := openTest(t, filepath.Join(src, "ds"), &Options{NShards: 4, Now: clock})
	var ids []RecordID
	for i := 0; i < 300; i++ {
		ids = append(ids, appendSync(t, s, fmt.Sprintf("pub-%d", i%7), fmt.Sprintf("plant/%d/temp", i%40), fmt.Sprint("payload ", i)))
	}
	now = now.Add(2 * time.Hour) // a second generation
	binary := []byte{0xff, 0x00, 0xfe, 'x'}
	s.Append("pub-b", "plant/bin", binary, binary, func(RecordID, error) {})
	putSync(t, func(d func(error)) { s.PutSession("dev-1", "state", []byte(`{"subs":["a/#"]}`), d) })
	putSync(t, func(d func(error)) { s.PutSession("dév-ü", "inflight", binary, d) })
	putSync(t, func(d func(error)) { s.PutCursors("dev-1", map[StreamKey]uint64{ids[5].StreamKey: 3}, d) })
	putSync(t, func(d func(error)) { s.PutRetained("plant/1/temp", []byte("21.5"), d) })
	putSync(t, func(d func(error)) { s.Assign("dev-2", ids[9], d) })
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	first := exportDir(t, src)
	if !bytes.Contains(first, []byte(`"key":"dev-1\u0000state"`)) || !bytes.Contains(first, []byte(`"bucket":["retained"]`)) {
		t.Fatalf("export lacks readable keys or buckets:\n%.2000s", first)
	}
	dst := t.TempDir()
	st, err := Import(dst, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 || st.Keys < 300 {
		t.Fatalf("imported %+v, want 3 files and at least 300 keys", st)
	}
	if second := exportDir(t, dst); !bytes.Equal(first, second) {
		t.Fatalf("export of the imported store differs:\nfirst  %d bytes\nsecond %d bytes", len(first), len(second))
	}

	// The imported store works: same site, records, cursors, sessions.
	s2 := openTest(t, filepath.Join(dst, "ds"), &Options{NShards: 4, Now: clock})
	if s2.Site() != s.Site() {
		t.Fatalf("site %s after import, want %s", s2.Site(), s.Site())
	}
	var total int
	for _, si := range s2.Streams(func(string) bool { return true }) {
		total += len(readAll(t, s2, si.Key))
	}
	if total != 301 {
		t.Fatalf("%d records after import, want 301", total)
	}
	cur, err := s2.LoadCursors("dev-1")
	if err != nil || cur[ids[5].StreamKey] != 3 {
		t.Fatalf("cursors after import: %v, %v", cur, err)
	}
	got := map[string]string{}
	if err := s2.LoadSessions(func(id string, parts map[string][]byte) error {
		for p, v := range parts {
			got[id+"/"+p] = string(v)
		}
		return nil
	}, func(id string, err error) { t.Errorf("session %q: %v", id, err) }); err != nil {
		t.Fatal(err)
	}
	if got["dev-1/state"] != `{"subs":["a/#"]}` || got["dév-ü/inflight"] != string(binary) {
		t.Fatalf("sessions after import: %q", got)
	}
	// New appends continue the streams after the imported heads.
	id := appendSync(t, s2, "pub-b", "plant/bin", "after import")
	if id.Seq != 2 {
		t.Fatalf("append after import got sequence %d", id.Seq)
	}
}

// TestImport_Refuses checks that an import never mixes with an existing
// store and leaves nothing behind when the export is damaged.
func TestImport_Refuses(t *testing.T) {
	src := t.TempDir()
	s := openTest(t, filepath.Join(src, "ds"), nil)
	appendSync(t, s, "p", "a/b", "x")
	s.Close()
	good := exportDir(t, src)

	if _, err := Import(src, bytes.NewReader(good)); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("import into a directory with a store: %v, want ErrNotEmpty", err)
	}
	lines := bytes.SplitAfter(good, []byte("\n"))
	cases := map[string][]byte{
		"truncated":  bytes.Join(lines[:len(lines)-2], nil),
		"not export": []byte(`{"hello":1}` + "\n"),
		"bad count":  bytes.Replace(good, []byte(`"end":true,"files":2`), []byte(`"end":true,"files":3`), 1),
		"escape":     bytes.Replace(good, []byte(`"file":"ds/meta.db"`), []byte(`"file":"../meta.db"`), -1),
		"bad base64": bytes.Replace(good, []byte(`"value_b64":"`), []byte(`"value_b64":"!!`), 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			if _, err := Import(dst, bytes.NewReader(in)); err == nil {
				t.Fatal("import succeeded")
			}
			if left := dbFiles(dst); len(left) > 0 {
				t.Fatalf("failed import left %v", left)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "meta.db")); err == nil {
				t.Fatal("import wrote outside the data directory")
			}
		})
	}
	if !strings.Contains(string(good), `"format":"gatemq-export"`) {
		t.Fatal("no format line")
	}
}
