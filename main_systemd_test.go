package main

import (
	"errors"
	"gatemq/internal/testkit"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// notifySocket listens on a unixgram NOTIFY_SOCKET in a temporary
// directory and returns its path with the messages received.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

// expectNotify waits for a message containing want and returns what came
// before it.
func expectNotify(t *testing.T, msgs <-chan string, want string, timeout time.Duration) []string {
	t.Helper()
	var before []string
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %s", want)
			}
			for line := range strings.SplitSeq(m, "\n") {
				if line == want {
					return before
				}
			}
			before = append(before, m)
		case <-deadline:
			t.Fatalf("no %s within %v; got %q", want, timeout, before)
		}
	}
}

func TestMain_SystemdNotify(t *testing.T) {
	bin := buildBinary(t)
	sock, msgs := notifySocket(t)
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-data-dir", t.TempDir())
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=300000")
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
		if t.Failed() {
			t.Logf("broker log:\n%s", logs.String())
		}
	})

	expectNotify(t, msgs, "READY=1", 10*time.Second)
	// READY=1 means clients can connect.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial after READY=1: %v", err)
	}
	nc.Close()
	for range 3 {
		expectNotify(t, msgs, "WATCHDOG=1", 5*time.Second)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	expectNotify(t, msgs, "STOPPING=1", 10*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestSystemd_WatchdogOnlyWhileHealthy(t *testing.T) {
	sock, msgs := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50ms
	var healthy atomic.Bool
	var checks atomic.Int64
	healthy.Store(true)
	sd := startSystemd(slog.New(slog.NewTextHandler(io.Discard, nil)), func() error {
		checks.Add(1)
		if healthy.Load() {
			return nil
		}
		return errors.New("sick")
	})
	defer sd.stopping()
	expectNotify(t, msgs, "READY=1", 5*time.Second)
	expectNotify(t, msgs, "WATCHDOG=1", 5*time.Second)

	healthy.Store(false)
	// Once a check has seen the failure, no ping may follow while it lasts.
	n := checks.Load()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if checks.Load() < n+2 {
			return errors.New("no failing check yet")
		}
		return nil
	})
	for len(msgs) > 0 {
		<-msgs // pings sent before the first failing check
	}
	n = checks.Load()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if checks.Load() < n+3 {
			return errors.New("too few checks")
		}
		return nil
	})
	select {
	case m := <-msgs:
		t.Fatalf("got %q while the health check fails", m)
	default:
	}

	healthy.Store(true)
	expectNotify(t, msgs, "WATCHDOG=1", 5*time.Second)
	sd.stopping()
	expectNotify(t, msgs, "STOPPING=1", 5*time.Second)
}

// TestUnit_Contract checks the settings of scripts/gatemq.service that the
// binary, install.sh and the packages rely on; make verify-unit has
// systemd-analyze check the rest.
func TestUnit_Contract(t *testing.T) {
	b, err := os.ReadFile("scripts/gatemq.service")
	if err != nil {
		t.Fatal(err)
	}
	set := make(map[string]bool)
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	for _, want := range []string{
		"Type=notify",
		"WatchdogSec=30s",
		"User=gatemq",
		"StateDirectory=gatemq",
		"ConfigurationDirectory=gatemq",
		"RuntimeDirectory=gatemq",
		"ProtectSystem=strict",
		"NoNewPrivileges=yes",
		"UMask=0077",
		"CapabilityBoundingSet=",
		"AmbientCapabilities=",
		"LimitNOFILE=65536",
		"ExecStart=/usr/bin/gatemq -config /etc/gatemq/gatemq.toml -data-dir /var/lib/gatemq",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=on-failure",
	} {
		if !set[want] {
			t.Errorf("scripts/gatemq.service lacks %q", want)
		}
	}
}
