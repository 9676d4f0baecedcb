package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/admin"
	"gatemq/internal/testkit"
)

// peerNode is one real gatemq process of a peer group test.
type peerNode struct {
	dir, cfg, mqtt, gossip string
	cmd                    *exec.Cmd
	logs                   *testkit.Buffer
}

// writePeerConfig writes n's config: a loopback peer group joining
// others, with short intervals so that failures show in well under a
// second.
func writePeerConfig(t *testing.T, n *peerNode, probe string, join ...string) {
	t.Helper()
	quoted := make([]string, len(join))
	for i, j := range join {
		quoted[i] = fmt.Sprintf("%q", j)
	}
	cfg := fmt.Sprintf("[peer_group]\nenable = true\nbind = %q\njoin = [%s]\ngossip_interval = \"20ms\"\nprobe_interval = %q\n",
		n.gossip, strings.Join(quoted, ", "), probe)
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (n *peerNode) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(buildBinary(t), "-config", n.cfg, "-listen", n.mqtt, "-data-dir", n.dir)
	n.logs = runBroker(t, n.cmd, n.mqtt)
}

// peers runs `gatemq peers -json` against n.
func (n *peerNode) peers(t *testing.T) ([]admin.Peer, error) {
	t.Helper()
	out, err := exec.Command(buildBinary(t), "peers", "-data-dir", n.dir, "-json").Output()
	if err != nil {
		return nil, fmt.Errorf("gatemq peers: %v: %s", err, out)
	}
	var ps []admin.Peer
	if err := json.Unmarshal(out, &ps); err != nil {
		return nil, fmt.Errorf("gatemq peers -json: %v\n%s", err, out)
	}
	return ps, nil
}

// waitPeer polls `gatemq peers` on n until the peer named name is in one
// of states, and returns the states seen meanwhile.
func (n *peerNode) waitPeer(t *testing.T, name string, states ...string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	testkit.WaitFor(t, 15*time.Second, func() error {
		ps, err := n.peers(t)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Name != name {
				continue
			}
			seen[p.State] = true
			for _, s := range states {
				if p.State == s {
					return nil
				}
			}
		}
		return fmt.Errorf("peer %s not %v in %+v", name, states, ps)
	})
	return seen
}

// TestMain_PeerGroup runs two gatemq processes in a peer group on
// loopback: `gatemq peers` on one shows both alive; after kill -9 of the
// other it shows it suspect or dead, then dead; restarted, alive again;
// after SIGTERM, left. Names default to the stores' site IDs.
func TestMain_PeerGroup(t *testing.T) {
	a := &peerNode{dir: t.TempDir(), mqtt: testkit.FreeAddr(t), gossip: testkit.FreeAddr(t)}
	b := &peerNode{dir: t.TempDir(), mqtt: testkit.FreeAddr(t), gossip: testkit.FreeAddr(t)}
	a.cfg, b.cfg = filepath.Join(a.dir, "gatemq.toml"), filepath.Join(b.dir, "gatemq.toml")
	writePeerConfig(t, a, "100ms", b.gossip)
	writePeerConfig(t, b, "100ms", a.gossip)
	a.start(t)
	b.start(t)

	site := func(n *peerNode) string {
		out, err := exec.Command(buildBinary(t), "ds", "info", "-data-dir", n.dir, "-json").Output()
		var in admin.DSInfo
		if err != nil || json.Unmarshal(out, &in) != nil || in.Site == "" {
			t.Fatalf("ds info: %v\n%s", err, out)
		}
		return in.Site
	}
	aName, bName := site(a), site(b)
	b.waitPeer(t, aName, "alive")
	a.waitPeer(t, bName, "alive")
	ps, err := a.peers(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || !ps[0].Self || ps[0].Name != aName || ps[0].Site != aName || ps[0].Address != a.gossip ||
		ps[1].Self || ps[1].Site != bName || ps[1].Address != b.gossip || ps[1].Version != "dev" {
		t.Fatalf("peers of a: %+v", ps)
	}
	out, err := exec.Command(buildBinary(t), "peers", "-data-dir", a.dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), aName+" (self)") || !strings.Contains(string(out), b.gossip) ||
		!strings.HasPrefix(string(out), "NAME") {
		t.Fatalf("gatemq peers: %v\n%s", err, out)
	}
	metric := func(n *peerNode, want string) {
		t.Helper()
		testkit.WaitFor(t, 10*time.Second, func() error {
			resp, err := unixClient(filepath.Join(n.dir, "admin.sock")).Get("http://gatemq/metrics")
			if err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body := string(b); err != nil || !strings.Contains(body, want) {
				return fmt.Errorf("/metrics lacks %q:\n%s", want, body)
			}
			return nil
		})
	}
	metric(a, `gatemq_peer_members{state="alive"} 2`+"\n")

	// kill -9: suspect, then dead.
	b.cmd.Process.Kill()
	b.cmd.Wait()
	seen := a.waitPeer(t, bName, "dead")
	t.Logf("states of the killed peer seen by a: %v", seen)
	metric(a, `gatemq_peer_members{state="dead"} 1`+"\n")
	testkit.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(a.logs.String(), `msg="peer failed"`) {
			return errors.New("no failure logged")
		}
		return nil
	})

	// Restarted on its data directory: the same name, alive again.
	b.start(t)
	a.waitPeer(t, bName, "alive")
	b.waitPeer(t, aName, "alive")

	// A changed [peer_group] key needs a restart: said on SIGHUP.
	writePeerConfig(t, a, "200ms", b.gossip)
	a.cmd.Process.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(a.logs.String(), `needs a restart" key=peer_group.probe_interval`) {
			return errors.New("no restart notice for peer_group.probe_interval")
		}
		return nil
	})

	// SIGTERM: left, not dead.
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("b exit: %v\n%s", err, b.logs)
	}
	a.waitPeer(t, bName, "left")
	metric(a, `gatemq_peer_members{state="left"} 1`+"\n")
	if !strings.Contains(b.logs.String(), "left the peer group") {
		t.Errorf("b's log lacks the leave:\n%s", b.logs)
	}

	// Without a running broker there is nothing to show.
	a.cmd.Process.Signal(syscall.SIGTERM)
	a.cmd.Wait()
	out, err = exec.Command(buildBinary(t), "peers", "-data-dir", a.dir).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "exists only in a running broker") {
		t.Fatalf("gatemq peers without a broker: %v\n%s", err, out)
	}
}

// TestMain_PeerGroupConfig: a peer group on the network without a key,
// and a key file of the wrong size, are errors naming the key; without
// the group, gatemq peers says so.
func TestMain_PeerGroupConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	write := func(name, content string) string { return writeTestFile(t, dir, name, []byte(content)) }
	noKey := write("nokey.toml", "data_dir = \"/tmp/x\"\n\n[peer_group]\nenable = true\n")
	shortKey := write("short.key", "c2hvcnQ=\n")
	badKey := write("badkey.toml", fmt.Sprintf("[peer_group]\nenable = true\nsecret_file = %q\n", shortKey))
	for _, tc := range []struct {
		cfg  string
		want []string
	}{
		{noKey, []string{"nokey.toml:3: peer_group.secret_file: required with bind \"0.0.0.0:7946\""}},
		{badKey, []string{"badkey.toml: peer_group.secret_file: read key", "16, 24 or 32 bytes"}},
	} {
		out, err := exec.Command(bin, "check-config", tc.cfg).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("check-config %s: %v\n%s", tc.cfg, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("check-config %s lacks %q:\n%s", tc.cfg, w, out)
			}
		}
		out, err = exec.Command(bin, "-config", tc.cfg, "-data-dir", t.TempDir(), "-listen", testkit.FreeAddr(t)).CombinedOutput()
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "peer_group.secret_file") {
			t.Fatalf("serve with %s: %v\n%s", tc.cfg, err, out)
		}
	}

	_, _, _ = startBroker(t, "-data-dir", dir)
	out, err := exec.Command(bin, "peers", "-data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no peer group") {
		t.Fatalf("gatemq peers without a peer group: %v\n%s", err, out)
	}
}
