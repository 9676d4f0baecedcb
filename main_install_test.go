package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatemq/conf"
)

// TestInstall_DestDir runs scripts/install.sh into a temporary root twice,
// as an upgrade would, and checks what it installs and what it keeps.
func TestInstall_DestDir(t *testing.T) {
	bin := buildBinary(t)
	root := t.TempDir()
	install := func() string {
		t.Helper()
		cmd := exec.Command("sh", "scripts/install.sh", bin)
		cmd.Env = append(os.Environ(), "DESTDIR="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	install()

	modes := map[string]os.FileMode{
		"usr/bin/gatemq":                    0o755,
		"etc/systemd/system/gatemq.service": 0o644,
		"etc/gatemq":                        0o750 | os.ModeDir,
		"etc/gatemq/gatemq.toml":            0o640,
		"var/lib/gatemq":                    0o700 | os.ModeDir,
	}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	// The example config, with the unit's data directory.
	example, _ := os.ReadFile("scripts/gatemq.toml")
	want := regexp.MustCompile(`(?m)^data_dir = "[^"]*" *`).ReplaceAllString(string(example), `data_dir = "/var/lib/gatemq"      `)
	if got, _ := os.ReadFile(filepath.Join(root, "etc/gatemq/gatemq.toml")); string(got) != want {
		t.Errorf("installed config is not scripts/gatemq.toml with data_dir /var/lib/gatemq:\n%s", got)
	}
	if c, err := conf.Load(filepath.Join(root, "etc/gatemq/gatemq.toml")); err != nil || c.DataDir != "/var/lib/gatemq" {
		t.Errorf("installed config: data_dir %q, err %v", c.DataDir, err)
	}
	out, err := exec.Command(filepath.Join(root, "usr/bin/gatemq"), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gatemq ") {
		t.Errorf("installed binary: version = %q, %v", out, err)
	}

	// An upgrade keeps the config and the data.
	cfg := filepath.Join(root, "etc/gatemq/gatemq.toml")
	edited := "[mqtt]\nmax_keepalive = 600\n"
	data := filepath.Join(root, "var/lib/gatemq/keep")
	for path, content := range map[string]string{cfg: edited, data: "data"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out := install(); !strings.Contains(out, "kept") {
		t.Errorf("second run does not say it kept the config:\n%s", out)
	}
	if got, _ := os.ReadFile(cfg); string(got) != edited {
		t.Errorf("upgrade replaced the config: %q", got)
	}
	if got, _ := os.ReadFile(data); string(got) != "data" {
		t.Errorf("upgrade lost data: %q", got)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(root, "*/*/.*.new")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
