package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// TestMain_DataDirPrivate runs the broker under umask 000, the most
// permissive there is, and checks that the data directory and everything
// in it is for the broker's user alone: directories 0700, files 0600. A
// data directory that already exists open to others is tightened.
func TestMain_DataDirPrivate(t *testing.T) {
	for _, existing := range []bool{false, true} {
		name := "created"
		if existing {
			name = "existing 0755"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state", "gatemq")
			if existing {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o755); err != nil { // whatever the test's umask
					t.Fatal(err)
				}
			}
			bin := buildBinary(t)
			addr := testkit.FreeAddr(t)
			cmd := exec.Command("sh", "-c", `umask 000 && exec "$0" "$@"`, bin, "-listen", addr, "-data-dir", dir)
			logs := runBroker(t, cmd, addr)
			// A persistent session, so that there is state to store.
			nc, _ := dialConnect(t, addr, packet.V311, "data-at-rest")
			nc.Close()

			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit: %v\n%s", err, logs.String())
			}
			if existing && !strings.Contains(logs.String(), "now 0700") {
				t.Errorf("no warning about the open data directory:\n%s", logs.String())
			}
			n := 0
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				want := fs.FileMode(0o600)
				if d.IsDir() {
					want = 0o700
				} else if !fi.Mode().IsRegular() {
					return nil // sockets and the like are not data
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s: mode %#o, want %#o", path, got, want)
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d entries checked", n)
		})
	}
}
