package admin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gatemq/gossip"
	"gatemq/internal/testkit"
)

// startPeer starts a peer group node on loopback with short intervals.
func startPeer(t *testing.T, name string, join ...string) *gossip.Group {
	t.Helper()
	g, err := gossip.Start(gossip.Options{Name: name, Bind: "127.0.0.1:0", Join: join, Site: "site-" + name, Version: "test",
		GossipInterval: 20 * time.Millisecond, ProbeInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown() })
	return g
}

// TestServer_Peers serves a real two-node peer group: GET /api/v1/peers
// lists both, this gateway first, and gatemq_peer_members counts them by
// state as the other leaves.
func TestServer_Peers(t *testing.T) {
	a := startPeer(t, "gw-a")
	b := startPeer(t, "gw-b", a.LocalAddr())
	_, c, _ := startUnix(t, Options{Broker: &fakeBroker{}, Peers: a})
	var peers []Peer
	testkit.WaitFor(t, 10*time.Second, func() error {
		code, body := do(t, c, "GET", "http://admin/api/v1/peers", nil)
		if code != 200 {
			return fmt.Errorf("status %d: %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &peers); err != nil {
			return err
		}
		if len(peers) != 2 || peers[1].State != "alive" {
			return fmt.Errorf("peers %+v", peers)
		}
		return nil
	})
	want := []Peer{
		{Name: "gw-a", Address: a.LocalAddr(), State: "alive", Site: "site-gw-a", Version: "test", Self: true},
		{Name: "gw-b", Address: b.LocalAddr(), State: "alive", Site: "site-gw-b", Version: "test"},
	}
	for i := range want {
		if peers[i].Since.IsZero() {
			t.Errorf("peer %d has no since", i)
		}
		peers[i].Since = time.Time{}
		if peers[i] != want[i] {
			t.Errorf("peer %d = %+v, want %+v", i, peers[i], want[i])
		}
	}
	metric := func(state string, n int) string {
		return fmt.Sprintf(`gatemq_peer_members{state="%s"} %d`+"\n", state, n)
	}
	_, body := do(t, c, "GET", "http://admin/metrics", nil)
	mfs := parseMetrics(t, body)
	if mfs["gatemq_peer_members"] == nil || !strings.Contains(body, metric("alive", 2)) || !strings.Contains(body, metric("left", 0)) {
		t.Fatalf("/metrics:\n%s", body)
	}

	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	b.Shutdown()
	testkit.WaitFor(t, 10*time.Second, func() error {
		_, body := do(t, c, "GET", "http://admin/metrics", nil)
		for _, w := range []string{metric("alive", 1), metric("suspect", 0), metric("dead", 0), metric("left", 1)} {
			if !strings.Contains(body, w) {
				return fmt.Errorf("/metrics lacks %q:\n%s", w, body)
			}
		}
		return nil
	})
}

// TestServer_NoPeers: without a peer group, /api/v1/peers is 404 and the
// metric family is absent.
func TestServer_NoPeers(t *testing.T) {
	_, c, _ := startUnix(t, Options{Broker: &fakeBroker{}})
	if code, body := do(t, c, "GET", "http://admin/api/v1/peers", nil); code != 404 || !strings.Contains(body, "no peer group") {
		t.Fatalf("GET /api/v1/peers = %d %s", code, body)
	}
	if _, body := do(t, c, "GET", "http://admin/metrics", nil); strings.Contains(body, "gatemq_peer_members") {
		t.Fatalf("/metrics has gatemq_peer_members without a peer group:\n%s", body)
	}
}
