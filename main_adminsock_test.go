package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// TestMain_AdminSocketUnderSystemd: with RuntimeDirectory= (systemd sets
// RUNTIME_DIRECTORY) and no [admin] socket, the broker serves its admin
// API there, not in the data directory; the operator commands find it
// with RUNTIME_DIRECTORY set, and without it (an SSH shell) through the
// fallback /run/gatemq/admin.sock, here pointed at the test's directory.
// A command naming another data directory does not take that broker for
// its own.
func TestMain_AdminSocketUnderSystemd(t *testing.T) {
	bin := buildBinary(t)
	dataDir, runDir := t.TempDir(), t.TempDir()
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-data-dir", dataDir)
	cmd.Env = append(cmd.Environ(), "RUNTIME_DIRECTORY="+runDir)
	runBroker(t, cmd, addr)
	sock := filepath.Join(runDir, "admin.sock")
	testkit.WaitFor(t, 10*time.Second, func() error {
		_, err := os.Stat(sock)
		return err
	})
	if _, err := os.Stat(filepath.Join(dataDir, "admin.sock")); !os.IsNotExist(err) {
		t.Fatalf("admin socket in the data directory too: %v", err)
	}
	dialConnect(t, addr, packet.V5, "dev-1")

	run := func(args ...string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		code := run(args, &out, &out)
		return out.String(), code
	}
	const clients = "clients"
	t.Run("RUNTIME_DIRECTORY", func(t *testing.T) {
		t.Setenv("RUNTIME_DIRECTORY", runDir)
		if out, code := run(clients, "-data-dir", dataDir); code != 0 || !strings.Contains(out, "dev-1") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		t.Setenv("RUNTIME_DIRECTORY", "")
		old := systemdAdminSocket
		systemdAdminSocket = sock
		t.Cleanup(func() { systemdAdminSocket = old })
		if out, code := run(clients, "-data-dir", dataDir); code != 0 || !strings.Contains(out, "dev-1") {
			t.Fatalf("-data-dir of the broker: exit %d:\n%s", code, out)
		}
		t.Chdir(t.TempDir()) // no ./data/admin.sock
		if out, code := run(clients); code != 0 || !strings.Contains(out, "dev-1") {
			t.Fatalf("no flags: exit %d:\n%s", code, out)
		}
		other := t.TempDir() // kick needs the broker; clients would read the directory
		if out, code := run("kick", "dev-1", "-data-dir", other); code != 1 || !strings.Contains(out, "no broker answers") {
			t.Fatalf("-data-dir of no broker: exit %d:\n%s", code, out)
		}
	})
	t.Run("[admin] socket", func(t *testing.T) {
		t.Setenv("RUNTIME_DIRECTORY", "")
		// Named outright, the socket is taken whatever data_dir says.
		cfg := filepath.Join(t.TempDir(), "gatemq.toml")
		os.WriteFile(cfg, fmt.Appendf(nil, "data_dir = %q\n[admin]\nsocket = %q\n", t.TempDir(), sock), 0o600)
		if out, code := run(clients, "-config", cfg); code != 0 || !strings.Contains(out, "dev-1") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}
