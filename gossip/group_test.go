package gossip

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatemq/internal/testkit"
)

// testOptions are a node's options on loopback with short intervals, so
// that failures are found in well under a second.
func testOptions(name string, join ...string) Options {
	return Options{
		Name:              name,
		Bind:              "127.0.0.1:0",
		Join:              join,
		Site:              "site-" + name,
		Version:           "test",
		GossipInterval:    20 * time.Millisecond,
		ProbeInterval:     100 * time.Millisecond,
		ReconnectInterval: 200 * time.Millisecond,
	}
}

// start starts a group with opts, logging into a buffer it returns, and
// shuts it down when the test ends.
func start(t *testing.T, opts Options) (*Group, *testkit.Buffer) {
	t.Helper()
	logs := new(testkit.Buffer)
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", opts.Name, logs)
		}
		if err := g.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", opts.Name, err)
		}
	})
	return g, logs
}

// states returns the members g sees, as "name=state" in Members' order.
func states(g *Group) string {
	var parts []string
	for _, m := range g.Members() {
		parts = append(parts, m.Name+"="+m.State.String())
	}
	return strings.Join(parts, " ")
}

// wantStates waits until g sees exactly want ("name=state ...").
func wantStates(t *testing.T, g *Group, want string, timeout time.Duration) {
	t.Helper()
	testkit.WaitFor(t, timeout, func() error {
		if got := states(g); got != want {
			return fmt.Errorf("%s sees %q, want %q", g.opts.Name, got, want)
		}
		return nil
	})
}

// waitLog waits until logs has every one of want.
func waitLog(t *testing.T, logs *testkit.Buffer, want ...string) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		for _, w := range want {
			if !strings.Contains(logs.String(), w) {
				return fmt.Errorf("log lacks %q:\n%s", w, logs)
			}
		}
		return nil
	})
}

func member(g *Group, name string) (Member, bool) {
	for _, m := range g.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// TestGroup_Membership starts three nodes, the second and third joining
// the first: each sees all three alive, with the others' site IDs,
// versions and addresses from their metadata.
func TestGroup_Membership(t *testing.T) {
	a, alog := start(t, testOptions("a"))
	b, _ := start(t, testOptions("b", a.LocalAddr()))
	c, _ := start(t, testOptions("c", b.LocalAddr()))
	for _, g := range []*Group{a, b, c} {
		want := map[string]string{"a": "a=alive b=alive c=alive", "b": "b=alive a=alive c=alive", "c": "c=alive a=alive b=alive"}
		wantStates(t, g, want[g.opts.Name], 5*time.Second)
	}
	for _, g := range []*Group{a, b, c} {
		for _, peer := range []*Group{a, b, c} {
			m, _ := member(g, peer.opts.Name)
			if m.Site != "site-"+peer.opts.Name || m.Version != "test" || m.Addr != peer.LocalAddr() || m.Self != (g == peer) {
				t.Errorf("%s sees %+v", g.opts.Name, m)
			}
		}
	}
	waitLog(t, alog, `msg="peer joined" peer=b`, `msg="peer joined" peer=c`)
}

// TestGroup_States takes a member through every state as another sees
// it: alive; suspect then dead when it stops without a word; alive again
// when it restarts under its name; left when it leaves. Seeing "suspect"
// relies on memberlist's log line for a failed probe (suspectName).
func TestGroup_States(t *testing.T) {
	a, alog := start(t, testOptions("a"))
	b, _ := start(t, testOptions("b", a.LocalAddr()))
	wantStates(t, a, "a=alive b=alive", 5*time.Second)
	bAddr := b.LocalAddr()

	// Crash: no leave. Only a probes b, so a's own probe makes it suspect,
	// for memberlist's suspicion timeout (4 probe intervals here).
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	wantStates(t, a, "a=alive b=suspect", 5*time.Second)
	wantStates(t, a, "a=alive b=dead", 5*time.Second)
	if m, _ := member(a, "b"); m.Addr != bAddr || m.Since.IsZero() {
		t.Errorf("dead member %+v", m)
	}
	waitLog(t, alog, "peer suspect", "peer failed")

	// Restart under the same name, from another port (as after a new
	// DHCP lease): alive again.
	b2, _ := start(t, testOptions("b", a.LocalAddr()))
	wantStates(t, a, "a=alive b=alive", 5*time.Second)
	if m, _ := member(a, "b"); m.Addr != b2.LocalAddr() {
		t.Errorf("restarted member %+v, want address %s", m, b2.LocalAddr())
	}

	// Leave: left, not dead. (b2 must know of a to tell it.)
	wantStates(t, b2, "b=alive a=alive", 5*time.Second)
	if err := b2.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	wantStates(t, a, "a=alive b=left", 5*time.Second)
	waitLog(t, alog, "peer left")
	if err := b2.Leave(time.Second); err != ErrClosed {
		t.Errorf("Leave after Shutdown = %v, want ErrClosed", err)
	}
}

// TestGroup_JoinRetry starts a node whose seed is not up yet: it joins
// once the seed starts.
func TestGroup_JoinRetry(t *testing.T) {
	seed := testkit.FreeAddr(t)
	late, logs := start(t, testOptions("late", seed))
	waitLog(t, logs, "no peer answers yet")
	opts := testOptions("seed")
	opts.Bind = seed
	s, _ := start(t, opts)
	wantStates(t, late, "late=alive seed=alive", 5*time.Second)
	wantStates(t, s, "seed=alive late=alive", 5*time.Second)
	waitLog(t, logs, "joined the peer group")
}

// TestGroup_Reconnect restarts a failed member on its address without a
// join list: the survivor, alone, asks it to join again.
func TestGroup_Reconnect(t *testing.T) {
	a, _ := start(t, testOptions("a"))
	b, _ := start(t, testOptions("b", a.LocalAddr()))
	wantStates(t, a, "a=alive b=alive", 5*time.Second)
	bAddr := b.LocalAddr()
	b.Shutdown()
	wantStates(t, a, "a=alive b=dead", 5*time.Second)
	opts := testOptions("b")
	opts.Bind = bAddr
	b2, _ := start(t, opts)
	wantStates(t, a, "a=alive b=alive", 5*time.Second)
	wantStates(t, b2, "b=alive a=alive", 5*time.Second)
}

// TestGroup_Encryption: nodes with the key form a group; a node with
// another key, or none, cannot join it.
func TestGroup_Encryption(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	withKey := func(name string, key []byte, join ...string) Options {
		o := testOptions(name, join...)
		o.SecretKey = key
		return o
	}
	a, _ := start(t, withKey("a", key))
	start(t, withKey("b", key, a.LocalAddr()))
	wantStates(t, a, "a=alive b=alive", 5*time.Second)
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"wrong-key", bytes.Repeat([]byte{8}, 16)}, {"no-key", nil}} {
		_, logs := start(t, withKey(tc.name, tc.key, a.LocalAddr()))
		waitLog(t, logs, "no peer answers yet")
	}
	if got := states(a); got != "a=alive b=alive" {
		t.Errorf("a sees %q after nodes without the key tried to join", got)
	}
}

func TestStart_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no name", Options{Bind: "127.0.0.1:0"}, "invalid name"},
		{"name with a space", Options{Name: "gw 1", Bind: "127.0.0.1:0"}, "invalid name"},
		{"bind host name", Options{Name: "a", Bind: "localhost:0"}, "not an IP address"},
		{"short key", Options{Name: "a", Bind: "127.0.0.1:0", SecretKey: []byte("short")}, "key size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Start(tc.opts)
			if err == nil {
				g.Shutdown()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
	// A port in use.
	a, _ := start(t, testOptions("a"))
	opts := testOptions("b")
	opts.Bind = a.LocalAddr()
	if g, err := Start(opts); err == nil {
		g.Shutdown()
		t.Fatal("started on a port in use")
	}
}
