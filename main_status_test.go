package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/admin"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// gatemqJSON runs the binary with args and decodes its -json output.
func gatemqJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command(buildBinary(t), append(args, "-json")...).Output()
	if err != nil {
		t.Fatalf("gatemq %v: %v\n%s", args, err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("gatemq %v: %v\n%s", args, err, out)
	}
}

func clientIDs(rows []admin.ClientStatus) []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ClientID+"/"+r.State)
	}
	return ids
}

// statusEvents parses mosquitto_sub -v lines of client events.
func statusEvents(out string) map[string]map[string]any {
	evs := map[string]map[string]any{}
	for _, line := range strings.Split(out, "\n") {
		topic, body, ok := strings.Cut(line, " ")
		var p map[string]any
		if ok && json.Unmarshal([]byte(body), &p) == nil {
			evs[topic] = p
		}
	}
	return evs
}

// TestMain_ClientStatus runs the real binary: mosquitto_sub follows the
// $SYS client events while mosquitto_pub and raw clients come and go;
// `gatemq clients` and `clients show` answer through the admin API and,
// with the broker stopped, from the data directory; clients connected at
// a kill -9 show offline with the restart time once it restarts, and
// those connected at a clean stop with the stop time.
func TestMain_ClientStatus(t *testing.T) {
	for _, name := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not found (install Debian's mosquitto-clients): %v", name, err)
		}
	}
	bin := buildBinary(t)
	dir, addr := t.TempDir(), testkit.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-listen", addr, "-data-dir", dir)
		runBroker(t, cmd, addr)
		return cmd
	}
	cmd := start()
	var in admin.DSInfo
	gatemqJSON(t, &in, "ds", "info", "-data-dir", dir)

	var events testkit.Buffer
	sub := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-V", "5", "-i", "follower", "-t", "$SYS/brokers/+/clients/+/#", "-v")
	sub.Stdout = &events
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Process.Kill(); sub.Wait() })
	pub := func(id, v string) {
		t.Helper()
		if out, err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-V", v, "-i", id, "-k", "33", "-t", "t/1", "-m", "hi").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v\n%s", err, out)
		}
	}
	// mosquitto_sub is subscribed once it sees an event.
	testkit.WaitFor(t, 10*time.Second, func() error {
		pub("probe", "311")
		if !strings.Contains(events.String(), "/clients/probe/disconnected") {
			return fmt.Errorf("no event yet: %q", events.String())
		}
		return nil
	})

	pub("dev-pub", "31")
	prefix := "$SYS/brokers/" + in.Site + "/clients/dev-pub/"
	testkit.WaitFor(t, 10*time.Second, func() error {
		evs := statusEvents(events.String())
		c, d := evs[prefix+"connected"], evs[prefix+"disconnected"]
		if c == nil || d == nil {
			return fmt.Errorf("events of dev-pub missing:\n%s", events.String())
		}
		if c["protocol_version"] != "3.1" || c["keepalive"] != 33.0 || c["clean_start"] != true || d["reason"] != "normal" ||
			d["disconnected_at"] == nil || d["disconnected_at_ms"].(float64) < c["connected_at_ms"].(float64) {
			return fmt.Errorf("events of dev-pub: %v %v", c, d)
		}
		return nil
	})

	// Two clients stay connected.
	dialConnect(t, addr, packet.V5, "held-5")
	dialConnect(t, addr, packet.V311, "held-311")
	online := []string{"follower/online", "held-311/online", "held-5/online"}
	var rows []admin.ClientStatus
	gatemqJSON(t, &rows, "clients", "--state", "online", "-data-dir", dir)
	if got := clientIDs(rows); !slices.Equal(got, online) {
		t.Fatalf("clients --state online: %v, want %v", got, online)
	}
	gatemqJSON(t, &rows, "clients", "--state", "offline", "-data-dir", dir)
	if got := clientIDs(rows); !slices.Equal(got, []string{"dev-pub/offline", "probe/offline"}) {
		t.Fatalf("clients --state offline: %v", got)
	}
	out, err := exec.Command(bin, "clients", "-data-dir", dir).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^held-5 +online .* 5\.0 +30s +true$`).Match(out) ||
		!regexp.MustCompile(`(?m)^dev-pub +offline .* normal .* 3\.1 +33s +true$`).Match(out) {
		t.Fatalf("gatemq clients:\n%s", out)
	}
	out, err = exec.Command(bin, "clients", "show", "dev-pub", "-data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "state:             offline\n") ||
		!strings.Contains(string(out), "disconnect reason: normal\n") || !strings.Contains(string(out), "site:              "+in.Site+"\n") {
		t.Fatalf("gatemq clients show dev-pub:\n%s", out)
	}
	var devPub admin.ClientStatus
	gatemqJSON(t, &devPub, "clients", "show", "dev-pub", "-data-dir", dir)

	// kill -9 once the online records are on disk (ds info reads the
	// store, not the broker's memory).
	testkit.WaitFor(t, 10*time.Second, func() error {
		gatemqJSON(t, &in, "ds", "info", "-data-dir", dir)
		if in.Online != 3 {
			return fmt.Errorf("%d clients online in the store", in.Online)
		}
		return nil
	})
	var held admin.ClientStatus
	gatemqJSON(t, &held, "clients", "show", "held-5", "-data-dir", dir)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// The data directory says what the broker recorded: online.
	gatemqJSON(t, &rows, "clients", "--state", "online", "-data-dir", dir)
	if got := clientIDs(rows); !slices.Equal(got, online) {
		t.Fatalf("clients --state online after kill -9, from the data directory: %v", got)
	}

	restartAt := time.Now().Truncate(time.Millisecond)
	cmd = start()
	var after admin.ClientStatus
	gatemqJSON(t, &after, "clients", "show", "held-5", "-data-dir", dir)
	if after.State != "offline" || after.Reason != "broker-restart" || after.OfflineAt == nil ||
		after.OfflineAt.Before(restartAt) || after.OfflineAt.After(time.Now()) || !after.OnlineAt.Equal(held.OnlineAt) ||
		after.Remote != held.Remote || after.ProtocolVersion != "5.0" {
		t.Fatalf("held-5 after the restart (at %v): %+v; before the kill: %+v", restartAt, after, held)
	}
	gatemqJSON(t, &rows, "clients", "--state", "online", "-data-dir", dir)
	if len(rows) > 1 || len(rows) == 1 && rows[0].ClientID != "follower" { // mosquitto_sub may have reconnected
		t.Fatalf("online after the restart: %v", clientIDs(rows))
	}
	var again admin.ClientStatus
	gatemqJSON(t, &again, "clients", "show", "dev-pub", "-data-dir", dir)
	if again.State != "offline" || !again.OfflineAt.Equal(*devPub.OfflineAt) || again.Reason != "normal" {
		t.Fatalf("dev-pub changed by the restart: %+v, was %+v", again, devPub)
	}

	// A clean stop records the disconnect of who is connected.
	dialConnect(t, addr, packet.V5, "at-stop")
	testkit.WaitFor(t, 10*time.Second, func() error {
		var r admin.ClientStatus
		gatemqJSON(t, &r, "clients", "show", "at-stop", "-data-dir", dir)
		if r.State != "online" {
			return fmt.Errorf("at-stop: %+v", r)
		}
		return nil
	})
	stopAt := time.Now().Truncate(time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	stoppedAt := time.Now()
	var stopped admin.ClientStatus
	gatemqJSON(t, &stopped, "clients", "show", "at-stop", "-data-dir", dir)
	if stopped.State != "offline" || stopped.Reason != "shutdown" || stopped.OfflineAt == nil ||
		stopped.OfflineAt.Before(stopAt) || stopped.OfflineAt.After(stoppedAt) {
		t.Fatalf("at-stop after a clean stop (between %v and %v): %+v", stopAt, stoppedAt, stopped)
	}
	out, err = exec.Command(bin, "clients", "--state", "online", "-data-dir", dir).CombinedOutput()
	if err != nil || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("clients online after a clean stop, from the data directory: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "clients", "show", "nobody", "-data-dir", dir).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "no status for client: nobody") {
		t.Fatalf("clients show nobody: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "clients", "--state", "asleep", "-data-dir", dir).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "usage: gatemq clients") {
		t.Fatalf("clients --state asleep: %v\n%s", err, out)
	}
}
