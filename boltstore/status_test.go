package boltstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func putStatusSync(t *testing.T, s *Store, recs ...ClientStatus) {
	t.Helper()
	ch := make(chan error, 1)
	s.PutStatus(recs, func(err error) { ch <- err })
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
}

func onlineIDs(t *testing.T, s *Store, site SiteID) []string {
	t.Helper()
	var ids []string
	err := s.OnlineStatuses(site, func(r ClientStatus) error { ids = append(ids, r.ClientID); return nil },
		func(id string, err error) { t.Errorf("online index %q: %v", id, err) })
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func allStatuses(t *testing.T, s *Store) map[string]ClientStatus {
	t.Helper()
	out := map[string]ClientStatus{}
	err := s.Statuses(func(r ClientStatus) error { out[r.ClientID] = r; return nil },
		func(id string, err error) { t.Errorf("status %q: %v", id, err) })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStore_StatusRoundTrip writes records through every field and state
// change and reads them back, after a reopen too: the online index
// follows the records, by site.
func TestStore_StatusRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	site := s.Site()
	other := SiteID{1, 2, 3, 4, 5, 6, 7, 8}
	t0 := time.UnixMilli(1_700_000_000_123)
	a := ClientStatus{ClientID: "dev-a", Online: true, OnlineAt: t0, Site: site, Remote: "10.0.0.7:40000",
		Protocol: 5, Username: "plc", KeepAlive: 60, CleanStart: true}
	b := ClientStatus{ClientID: "dev-b", Online: true, OnlineAt: t0.Add(time.Second), Site: other, Remote: "[::1]:1", Protocol: 4}
	c := ClientStatus{ClientID: "dev-c", OnlineAt: t0, OfflineAt: t0.Add(time.Minute), Site: site, Protocol: 3, Reason: "network"}
	putStatusSync(t, s, a, b, c)

	if got, ok, err := s.Status("dev-a"); err != nil || !ok || !reflect.DeepEqual(got, a) {
		t.Fatalf("Status(dev-a) = %+v %v %v, want %+v", got, ok, err, a)
	}
	if _, ok, err := s.Status("nobody"); ok || err != nil {
		t.Fatalf("Status(nobody) = %v %v", ok, err)
	}
	if ids := onlineIDs(t, s, site); !reflect.DeepEqual(ids, []string{"dev-a"}) {
		t.Fatalf("online at site: %v", ids)
	}
	if ids := onlineIDs(t, s, other); !reflect.DeepEqual(ids, []string{"dev-b"}) {
		t.Fatalf("online at other site: %v", ids)
	}

	// dev-a goes offline, dev-b moves to this site, dev-c comes online.
	a.Online, a.OfflineAt, a.Reason = false, t0.Add(2*time.Minute), "normal"
	b.Site, b.OnlineAt = site, t0.Add(3*time.Minute)
	c.Online, c.OnlineAt, c.Reason = true, t0.Add(4*time.Minute), ""
	putStatusSync(t, s, a, b, c)
	if ids := onlineIDs(t, s, site); !reflect.DeepEqual(ids, []string{"dev-b", "dev-c"}) {
		t.Fatalf("online at site after changes: %v", ids)
	}
	if ids := onlineIDs(t, s, other); len(ids) != 0 {
		t.Fatalf("dev-b still listed at its old site: %v", ids)
	}
	if in := s.Info(); in.Clients != 3 || in.Online != 2 {
		t.Fatalf("Info: %d clients, %d online; want 3 and 2", in.Clients, in.Online)
	}
	s.Close()

	s = openTest(t, dir, nil)
	got := allStatuses(t, s)
	want := map[string]ClientStatus{"dev-a": a, "dev-b": b, "dev-c": c}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
}

// TestStore_StatusMarkOffline: the records left online at this site by a
// crash go offline with the restart time; other sites' are left alone.
func TestStore_StatusMarkOffline(t *testing.T) {
	s := openTest(t, "", nil)
	other := SiteID{9}
	t0 := time.UnixMilli(1_700_000_000_000)
	putStatusSync(t, s,
		ClientStatus{ClientID: "on-1", Online: true, OnlineAt: t0, Site: s.Site()},
		ClientStatus{ClientID: "on-2", Online: true, OnlineAt: t0, Site: s.Site()},
		ClientStatus{ClientID: "off", OnlineAt: t0, OfflineAt: t0.Add(time.Second), Site: s.Site(), Reason: "normal"},
		ClientStatus{ClientID: "elsewhere", Online: true, OnlineAt: t0, Site: other})
	restart := t0.Add(time.Hour)
	n, err := s.MarkOffline(s.Site(), restart, "broker-restart")
	if err != nil || n != 2 {
		t.Fatalf("MarkOffline = %d %v, want 2", n, err)
	}
	got := allStatuses(t, s)
	for _, id := range []string{"on-1", "on-2"} {
		if r := got[id]; r.Online || !r.OfflineAt.Equal(restart) || r.Reason != "broker-restart" || !r.OnlineAt.Equal(t0) {
			t.Errorf("%s after MarkOffline: %+v", id, r)
		}
	}
	if r := got["off"]; !r.OfflineAt.Equal(t0.Add(time.Second)) || r.Reason != "normal" {
		t.Errorf("offline record changed: %+v", r)
	}
	if r := got["elsewhere"]; !r.Online {
		t.Errorf("other site's record changed: %+v", r)
	}
	if ids := onlineIDs(t, s, s.Site()); len(ids) != 0 {
		t.Fatalf("still online: %v", ids)
	}
	if n, err := s.MarkOffline(s.Site(), restart, "x"); n != 0 || err != nil {
		t.Fatalf("second MarkOffline = %d %v", n, err)
	}
}

// TestStore_StatusBadInput: client IDs bbolt cannot key are skipped
// without failing the batch they are in, and a corrupt value is reported,
// never returned.
func TestStore_StatusBadInput(t *testing.T) {
	s := openTest(t, "", nil)
	long := strings.Repeat("x", MaxStatusClientID+1)
	longest := strings.Repeat("y", MaxStatusClientID)
	putStatusSync(t, s,
		ClientStatus{ClientID: "", Online: true, Site: s.Site()},
		ClientStatus{ClientID: long, Online: true, Site: s.Site()},
		ClientStatus{ClientID: longest, Online: true, Site: s.Site()},
		ClientStatus{ClientID: "ok", Site: s.Site(), Username: strings.Repeat("u", 70000)})
	got := allStatuses(t, s)
	if len(got) != 2 || got["ok"].Username != strings.Repeat("u", 70000) || !got[longest].Online {
		t.Fatalf("records: %d", len(got))
	}

	// Flip a byte of "ok": Statuses reports it, Status fails, Check too.
	err := s.meta.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStatus)
		v := append([]byte(nil), b.Get([]byte("ok"))...)
		v[5] ^= 0xFF
		return b.Put([]byte("ok"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	s.Statuses(func(ClientStatus) error { return nil }, func(id string, err error) {
		if errors.Is(err, ErrCorrupt) {
			bad = append(bad, id)
		}
	})
	if !reflect.DeepEqual(bad, []string{"ok"}) {
		t.Fatalf("corrupt reported for %v", bad)
	}
	if _, _, err := s.Status("ok"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Status of a corrupt record: %v", err)
	}
	if err := s.Check(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `status "ok"`) {
		t.Fatalf("Check: %v", err)
	}
	// Mend it so the cleanup check passes.
	putStatusSync(t, s, ClientStatus{ClientID: "ok", Site: s.Site()})
}

// TestStore_StatusReadOnly: the command-line tools read status from a
// store opened ReadOnly and cannot write it.
func TestStore_StatusReadOnly(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	putStatusSync(t, s, ClientStatus{ClientID: "dev", Online: true, OnlineAt: time.UnixMilli(5), Site: s.Site()})
	site := s.Site()
	s.Close()
	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ids := onlineIDs(t, ro, site); !reflect.DeepEqual(ids, []string{"dev"}) {
		t.Fatalf("read-only online list: %v", ids)
	}
	ch := make(chan error, 1)
	ro.PutStatus([]ClientStatus{{ClientID: "x", Site: site}}, func(err error) { ch <- err })
	if err := <-ch; !errors.Is(err, ErrClosed) {
		t.Fatalf("PutStatus on a read-only store: %v", err)
	}
	if _, err := ro.MarkOffline(site, time.Now(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("MarkOffline on a read-only store: %v", err)
	}
}

// TestStore_StatusOldStore: a store without the status buckets (made
// before them) reads as empty.
func TestStore_StatusOldStore(t *testing.T) {
	s := openTest(t, "", nil)
	if got := allStatuses(t, s); len(got) != 0 {
		t.Fatal(got)
	}
	if ids := onlineIDs(t, s, s.Site()); len(ids) != 0 {
		t.Fatal(ids)
	}
	if _, ok, err := s.Status("x"); ok || err != nil {
		t.Fatal(ok, err)
	}
}
