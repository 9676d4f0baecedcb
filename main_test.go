package main

import (
	"bufio"
	"bytes"

	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// gatemqBin builds the binary once per test run.
var gatemqBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatemq-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatemq")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func buildBinary(t *testing.T) string {
	t.Helper()
	bin, err := gatemqBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startBroker runs the real binary and waits until it accepts connections.
func startBroker(t *testing.T, args ...string) (*exec.Cmd, string, *testkit.Buffer) {
	t.Helper()
	bin := buildBinary(t)
	addr := testkit.FreeAddr(t)
	args = append([]string{"-listen", addr, "-data-dir", t.TempDir()}, args...)
	cmd := exec.Command(bin, args...)
	return cmd, addr, runBroker(t, cmd, addr)
}

// runBroker starts cmd, a broker listening on addr, kills it when the
// test ends if it is still running, and waits until it accepts
// connections. It returns the broker's log.
func runBroker(t *testing.T, cmd *exec.Cmd, addr string) *testkit.Buffer {
	t.Helper()
	var logs testkit.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	testkit.WaitFor(t, 10*time.Second, func() error {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err
	})
	return &logs
}

func dialConnect(t *testing.T, addr string, v packet.Version, id string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.Write(packet.Append(nil, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}, v))
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pk, err := packet.Read(br, v, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := pk.(*packet.Connack); !ok || ack.Reason != packet.Success {
		t.Fatalf("connect: %+v", pk)
	}
	return nc, br
}

func TestMain_GracefulShutdown(t *testing.T) {
	cmd, addr, logs := startBroker(t)
	v5, br5 := dialConnect(t, addr, packet.V5, "v5-client")
	v3, br3 := dialConnect(t, addr, packet.V311, "v3-client")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// v5 clients are told the server is shutting down.
	v5.SetReadDeadline(time.Now().Add(5 * time.Second))
	pk, err := packet.Read(br5, packet.V5, 0)
	if err != nil {
		t.Fatalf("v5 client: %v", err)
	}
	if d, ok := pk.(*packet.Disconnect); !ok || d.Reason != packet.ServerShuttingDown {
		t.Fatalf("v5 client got %+v, want DISCONNECT 0x8B", pk)
	}
	// 3.x clients are just closed.
	v3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if pk, err := packet.Read(br3, packet.V311, 0); err == nil {
		t.Fatalf("v3 client got %+v, want the connection closed", pk)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("broker did not exit\n%s", logs)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", logs)
	}
}

func TestMain_DefaultLogSaysHowToOpenToLAN(t *testing.T) {
	_, _, logs := startBroker(t)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "0.0.0.0:1883") {
			return errors.New("no LAN hint yet")
		}
		return nil
	})
}

func TestMain_SysTopics(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatemq.toml")
	os.WriteFile(cfg, []byte("[mqtt]\nsys_interval = \"1s\"\n"), 0o600)
	_, addr, _ := startBroker(t, "-config", cfg)
	nc, br := dialConnect(t, addr, packet.V311, "sys-watcher")
	nc.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$SYS/broker/#"}}}, packet.V311))
	seen := map[string]string{}
	deadline := time.Now().Add(5 * time.Second)
	want := []string{"uptime", "clients/connected", "clients/total", "messages/received", "messages/sent",
		"bytes/received", "bytes/sent", "subscriptions/count", "retained messages/count", "version"}
	complete := func() bool {
		for _, k := range want {
			if _, ok := seen[k]; !ok {
				return false
			}
		}
		return seen["clients/connected"] == "1" && seen["subscriptions/count"] == "1"
	}
	for time.Now().Before(deadline) && !complete() {
		nc.SetReadDeadline(deadline)
		pk, err := packet.Read(br, packet.V311, 0)
		if err != nil {
			break
		}
		if p, ok := pk.(*packet.Publish); ok {
			seen[strings.TrimPrefix(p.Topic, "$SYS/broker/")] = string(p.Payload)
		}
	}
	for _, k := range want {
		if _, ok := seen[k]; !ok {
			t.Errorf("$SYS/broker/%s not published; got %v", k, seen)
		}
	}
	if seen["clients/connected"] != "1" {
		t.Errorf("clients/connected = %q, want 1", seen["clients/connected"])
	}
	if seen["subscriptions/count"] != "1" {
		t.Errorf("subscriptions/count = %q, want 1", seen["subscriptions/count"])
	}
}

func TestMain_ConfigErrorsNameFileLineKey(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.toml")
	os.WriteFile(cfg, []byte("data_dir = \"x\"\n[mqtt]\nmax_keep_alive = 10\n"), 0o600)
	out, err := exec.Command(bin, "-config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2; output:\n%s", err, out)
	}
	for _, want := range []string{"bad.toml:3", "mqtt.max_keep_alive", "unknown key"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestMain_Version(t *testing.T) {
	out, err := exec.Command(buildBinary(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gatemq ") {
		t.Fatalf("version: %v %q", err, out)
	}
}

// scripts/conformance.toml is what docs/conformance.md tells people to run
// Paho's interoperability suite with: check the two settings the suite
// relies on, through the real binary.
func TestMain_ConformanceConfig(t *testing.T) {
	_, addr, _ := startBroker(t, "-config", "scripts/conformance.toml")
	for _, tc := range []struct {
		v      packet.Version
		filter string
	}{{packet.V311, "nosubscribe"}, {packet.V5, "test/nosubscribe"}} {
		nc, br := dialConnect(t, addr, tc.v, "conformance-"+tc.v.String())
		nc.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: tc.filter, QoS: 2}}}, tc.v))
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		pk, err := packet.Read(br, tc.v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ack, ok := pk.(*packet.Suback); !ok || len(ack.Reasons) != 1 || ack.Reasons[0] != 0x80 {
			t.Fatalf("%s: SUBACK %+v, want 0x80", tc.v, pk)
		}
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(packet.Append(nil, &packet.Connect{ClientID: "keepalive-120", CleanStart: true, KeepAlive: 120}, packet.V5))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pk, err := packet.Read(bufio.NewReader(nc), packet.V5, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := pk.(*packet.Connack)
	if !ok || !ack.Properties.Present.Has(packet.PropServerKeepAlive) || ack.Properties.ServerKeepAlive != 60 {
		t.Fatalf("CONNACK %+v, want Server Keep Alive 60", pk)
	}
}

// gatemq ds info and gatemq sessions list read the data directory of a
// stopped broker: a durable session made through the real binary shows
// there after a kill -9.
func TestMain_DurableCLI(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-data-dir", dir)
	runBroker(t, cmd, addr)
	// The admin socket comes up after the listeners; until it does, the
	// commands read the data directory, where every session is offline.
	testkit.WaitFor(t, 10*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "admin.sock"))
		return err
	})
	props := packet.Properties{SessionExpiry: 3600}
	props.Present.Add(packet.PropSessionExpiry)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	nc.Write(packet.Append(nil, &packet.Connect{ClientID: "cli-durable", KeepAlive: 30, Properties: props}, packet.V5))
	nc.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "cli/#", QoS: 1}}}, packet.V5))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 2; i++ { // CONNACK, SUBACK: the subscription is committed
		if _, err := packet.Read(br, packet.V5, 0); err != nil {
			t.Fatal(err)
		}
	}
	// While the broker runs, the commands ask it through its admin socket.
	out, err := exec.Command(bin, "ds", "info", "-data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "shards:    1\n") {
		t.Fatalf("ds info on a running broker: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "sessions", "list", "-data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cli-durable  online") || !strings.Contains(string(out), "cli/# (qos 1)") {
		t.Fatalf("sessions list on a running broker: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	out, err = exec.Command(bin, "sessions", "list", "-data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cli-durable") || !strings.Contains(string(out), "cli/#") {
		t.Fatalf("sessions list: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "ds", "info", "-data-dir", dir, "-json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"sessions": 1`) || !strings.Contains(string(out), `"shards": 1,`) {
		t.Fatalf("ds info: %v\n%s", err, out)
	}
}
