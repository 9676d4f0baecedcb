package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatemq/boltstore"
	"gatemq/broker"
)

// fakeBroker is a Broker with canned answers.
type fakeBroker struct {
	mu     sync.Mutex
	kicked []string
	stats  broker.Stats
	qos    broker.QoSStats
}

func (f *fakeBroker) ClientStatuses(fl broker.StatusFilter) ([]boltstore.ClientStatus, error) {
	all := []boltstore.ClientStatus{
		{ClientID: "dev-1", Online: true, Remote: "127.0.0.1:5000", Protocol: 5, KeepAlive: 60, OnlineAt: time.Unix(1700000000, 0)},
		{ClientID: "dev-9", Protocol: 4, OnlineAt: time.Unix(1700000000, 0), OfflineAt: time.Unix(1700000100, 0), Reason: "network"},
	}
	var out []boltstore.ClientStatus
	for _, r := range all {
		if fl == broker.StatusAll || r.Online == (fl == broker.StatusOnline) {
			out = append(out, r)
		}
	}
	return out, nil
}
func (f *fakeBroker) ClientStatus(id string) (boltstore.ClientStatus, bool, error) {
	all, _ := f.ClientStatuses(broker.StatusAll)
	for _, r := range all {
		if r.ClientID == id {
			return r, true, nil
		}
	}
	return boltstore.ClientStatus{}, false, nil
}
func (f *fakeBroker) Sessions() []broker.SessionInfo {
	return []broker.SessionInfo{{ClientID: "dev-1", Online: true}, {ClientID: "dev-2", Durable: true, ExpirySeconds: 3600}}
}
func (f *fakeBroker) Session(id string) (broker.SessionInfo, []broker.SubscriptionInfo, bool) {
	switch id {
	case "dev-1":
		return broker.SessionInfo{ClientID: id, Online: true}, nil, true
	case "dev-2":
		return broker.SessionInfo{ClientID: id, Durable: true, ExpirySeconds: 3600},
			[]broker.SubscriptionInfo{{Filter: "a/#", QoS: 1}}, true
	}
	return broker.SessionInfo{}, nil, false
}
func (f *fakeBroker) RetainedMessages() []broker.RetainedInfo {
	return []broker.RetainedInfo{{Topic: "r/1", QoS: 1, Bytes: 5, From: "dev-1"}}
}
func (f *fakeBroker) Kick(id string, _ time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kicked = append(f.kicked, id)
	return id == "dev-1"
}
func (f *fakeBroker) Stats() broker.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}
func (f *fakeBroker) QoSStats() broker.QoSStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.qos
}
func (f *fakeBroker) SessionCounts() (int, int) { return 1, 1 }
func (f *fakeBroker) Listening() int            { return 1 }

// fakeStore is a Store whose commits the test drives.
type fakeStore struct {
	mu  sync.Mutex
	obs func(boltstore.Commit)
}

func (f *fakeStore) Info() boltstore.Info { return boltstore.Info{Dir: "/d/ds", Shards: 4} }
func (f *fakeStore) Stats() boltstore.Stats {
	return boltstore.Stats{Records: 7, Commits: 2, Bytes: 1 << 20}
}
func (f *fakeStore) DiskStats() boltstore.DiskStats {
	return boltstore.DiskStats{Commits: 3, Fsyncs: 6, BytesWritten: 12288}
}
func (f *fakeStore) ExportAll(io.Writer, ...boltstore.ExportFile) (boltstore.ExportStats, error) {
	return boltstore.ExportStats{}, errors.New("not exported by the fake")
}

func (f *fakeStore) ObserveCommits(fn func(boltstore.Commit)) {
	f.mu.Lock()
	f.obs = fn
	f.mu.Unlock()
}

// unixClient returns an HTTP client whose every request goes to the Unix
// socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

func startUnix(t *testing.T, opts Options) (*Server, *http.Client, string) {
	t.Helper()
	s := New(opts)
	path := filepath.Join(t.TempDir(), "admin.sock")
	if _, err := s.ListenUnix(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, unixClient(path), path
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer_Endpoints(t *testing.T) {
	fb, fs := &fakeBroker{}, &fakeStore{}
	_, c, path := startUnix(t, Options{Broker: fb, Store: fs})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	tests := []struct {
		name, method, path string
		code               int
		contains           string
	}{
		{"healthz", "GET", "/healthz", 200, `"ok"`},
		{"readyz", "GET", "/readyz", 200, `"ready"`},
		{"clients", "GET", "/api/v1/clients", 200, `"protocol_version": "5.0"`},
		{"clients online", "GET", "/api/v1/clients?state=online", 200, `"state": "online"`},
		{"clients offline", "GET", "/api/v1/clients?state=offline", 200, `"disconnect_reason": "network"`},
		{"clients bad state", "GET", "/api/v1/clients?state=asleep", 400, `online or offline`},
		{"client", "GET", "/api/v1/clients/dev-9", 200, `"offline_at": "2023-11-14T22:15:00Z"`},
		{"no client", "GET", "/api/v1/clients/nobody", 404, `no status`},
		{"sessions", "GET", "/api/v1/sessions", 200, `"a/# (qos 1)"`},
		{"session", "GET", "/api/v1/sessions/dev-2", 200, `"filter": "a/#"`},
		{"no session", "GET", "/api/v1/sessions/nobody", 404, `"error"`},
		{"retained", "GET", "/api/v1/retained", 200, `"topic": "r/1"`},
		{"ds", "GET", "/api/v1/ds", 200, `"shards": 4`},
		{"kick", "POST", "/api/v1/clients/dev-1", 200, `"kicked": "dev-1"`},
		{"kick delete", "DELETE", "/api/v1/clients/dev-1", 200, `"kicked"`},
		{"kick absent", "POST", "/api/v1/clients/nobody", 404, `not connected`},
		{"wrong method", "PUT", "/api/v1/clients/dev-1", 405, ""},
		{"unknown", "GET", "/nope", 404, ""},
		{"metrics", "GET", "/metrics", 200, "gatemq_store_fsyncs_total 6\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, c, tc.method, "http://admin"+tc.path, nil)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("%s %s = %d %s, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.contains)
			}
		})
	}
	for state, want := range map[string]string{"": "dev-1/online dev-9/offline", "online": "dev-1/online", "offline": "dev-9/offline"} {
		var cs []ClientStatus
		_, body := do(t, c, "GET", "http://admin/api/v1/clients?state="+state, nil)
		var ids []string
		if err := json.Unmarshal([]byte(body), &cs); err != nil {
			t.Fatal(err)
		}
		for _, r := range cs {
			ids = append(ids, r.ClientID+"/"+r.State)
		}
		if got := strings.Join(ids, " "); got != want {
			t.Errorf("clients?state=%s: %s", state, got)
		}
	}
	var sess []Session
	_, body := do(t, c, "GET", "http://admin/api/v1/sessions", nil)
	if err := json.Unmarshal([]byte(body), &sess); err != nil || len(sess) != 2 || sess[0].State != "online" || sess[1].State != "offline" {
		t.Fatalf("sessions = %+v, %v", sess, err)
	}
}

func TestServer_MetricsMove(t *testing.T) {
	fb, fs := &fakeBroker{}, &fakeStore{}
	_, c, _ := startUnix(t, Options{Broker: fb, Store: fs})
	fb.mu.Lock()
	fb.qos.MessagesReceived[1] = 42
	fb.stats.ClientsConnected = 3
	fb.mu.Unlock()
	fs.mu.Lock()
	fs.obs(boltstore.Commit{Records: 10, Duration: 3 * time.Millisecond, Bytes: 8192})
	fs.mu.Unlock()
	_, body := do(t, c, "GET", "http://admin/metrics", nil)
	for _, want := range []string{
		`gatemq_messages_received_total{qos="1"} 42` + "\n",
		"gatemq_connections 3\n",
		`gatemq_sessions{state="offline"} 1` + "\n",
		"gatemq_store_commit_duration_seconds_sum 0.003\n",
		`gatemq_store_commit_batch_size_bucket{le="16"} 1` + "\n",
		"gatemq_store_commit_batch_size_count 1\n",
		"gatemq_store_size_bytes 1048576\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestServer_TCPToken(t *testing.T) {
	s := New(Options{Broker: &fakeBroker{}, Token: "s3cret"})
	ln, err := s.ServeTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	url := "http://" + ln.Addr().String() + "/api/v1/clients"
	c := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"missing", nil, 401},
		{"wrong", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"not bearer", map[string]string{"Authorization": "s3cret"}, 401},
		{"right", map[string]string{"Authorization": "Bearer s3cret"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := do(t, c, "GET", url, tc.hdr); code != tc.code {
				t.Fatalf("status %d %s, want %d", code, body, tc.code)
			}
		})
	}
	if _, err := New(Options{Broker: &fakeBroker{}}).ServeTCP("127.0.0.1:0"); err != ErrNoToken {
		t.Fatalf("ServeTCP without token: %v", err)
	}
}

func TestServer_StaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Broker: &fakeBroker{}})
	defer s.Close(context.Background())
	if _, err := s.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("ListenUnix on a live socket: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the file, as a crash does
	if _, err := s.ListenUnix(path); err != nil {
		t.Fatalf("ListenUnix on a stale socket: %v", err)
	}
}
