package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/conf"
	"gatemq/internal/testkit"
)

var (
	tableLine = regexp.MustCompile(`^\s*#?\s*\[\[?\s*([a-z_]+)\s*\]\]?`) // "# [[offline]]": an example table
	keyLine   = regexp.MustCompile(`^\s*#?\s*([a-z_]+)\s*=`)
)

// tomlKeys returns the keys a TOML example documents, as table.key,
// including keys and tables shown commented out ("# allow_anonymous =
// true", "# [[archive]]").
func tomlKeys(text string) []string {
	var keys []string
	table := ""
	for line := range strings.SplitSeq(text, "\n") {
		if m := tableLine.FindStringSubmatch(line); m != nil {
			table = m[1] + "."
			continue
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			keys = append(keys, table+m[1])
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// readmeReference returns the ```toml block under "## Configuration
// reference" in README.md.
func readmeReference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## Configuration reference\n")
	if !ok {
		t.Fatal(`README.md: no "## Configuration reference" section`)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	_, block, ok := strings.Cut(rest, "```toml\n")
	if !ok {
		t.Fatal("README.md: no ```toml block in the configuration reference")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

func TestDefaultConfig_MatchesScript(t *testing.T) {
	want, err := os.ReadFile("scripts/gatemq.toml")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"default-config"}, &out, &errb); code != 0 {
		t.Fatalf("gatemq default-config: exit %d: %s", code, errb.String())
	}
	if out.String() != string(want) {
		t.Fatalf("gatemq default-config differs from scripts/gatemq.toml:\n%s", out.String())
	}
}

func TestDefaultConfig_LoadsToDefaults(t *testing.T) {
	c, err := conf.Load("scripts/gatemq.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := conf.Default(); !reflect.DeepEqual(c, want) {
		t.Fatalf("scripts/gatemq.toml loads to\n%+v\nwant conf.Default()\n%+v", c, want)
	}
}

func TestDefaultConfig_EveryKey(t *testing.T) {
	var printed bytes.Buffer
	if err := conf.Print(&printed, conf.Default()); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("scripts/gatemq.toml")
	if err != nil {
		t.Fatal(err)
	}
	example := tomlKeys(string(script))
	readme := tomlKeys(readmeReference(t))
	for _, k := range tomlKeys(printed.String()) {
		if !slices.Contains(example, k) {
			t.Errorf("key %s of conf.Default() is missing from scripts/gatemq.toml", k)
		}
	}
	for _, k := range example {
		if !slices.Contains(readme, k) {
			t.Errorf("key %s of scripts/gatemq.toml is missing from the README's configuration reference", k)
		}
	}
	// Keys conf.Print leaves out when unset must be in both, commented.
	for _, k := range []string{"listener.allow_anonymous", "listener.durable_sessions",
		"offline.topic", "offline.mode", "offline.max_messages", "offline.max_bytes", "offline.retention",
		"archive.topic", "archive.retention", "archive.max_bytes"} {
		if !slices.Contains(example, k) {
			t.Errorf("optional key %s is missing from scripts/gatemq.toml", k)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeTestFile(t, dir, name, []byte(content)) }
	tests := []struct {
		name    string
		path    string
		code    int
		stdout  string   // printed config contains it
		stderrs []string // every one appears in stderr
	}{
		{name: "example", path: "scripts/gatemq.toml", code: 0, stdout: "max_keepalive = 65535",
			stderrs: []string{"configuration ok"}},
		{name: "override", path: write("ok.toml", "[mqtt]\nmax_keepalive = 600\n"), code: 0, stdout: "max_keepalive = 600"},
		{name: "typo", path: write("typo.toml", "[mqtt]\nmax_keepalive = 60\nmax_keeplive = 3\n[log]\nlevel = \"loud\"\n"), code: 1,
			stderrs: []string{"typo.toml:3: mqtt.max_keeplive: unknown key", "typo.toml:5: log.level"}},
		{name: "missing listener file", path: write("files.toml", "[[listener]]\naddress = \"127.0.0.1:1883\"\npassword_file = \"/nonexistent/passwords\"\n"), code: 1,
			stderrs: []string{"files.toml: listener[0].password_file: "}},
		{name: "privileged port", path: write("low.toml", "[[listener]]\naddress = \"127.0.0.1:883\"\n"), code: 0, stdout: `address = "127.0.0.1:883"`,
			stderrs: []string{"listener[0].address 127.0.0.1:883 is a port below 1024", "configuration ok"}},
		{name: "no such file", path: filepath.Join(dir, "absent.toml"), code: 1, stderrs: []string{"absent.toml"}},
		{name: "offline rules", path: write("offline.toml", "[[offline]]\ntopic = \"jobs/#\"\nmode = \"queue\"\nmax_messages = 50\n"),
			code: 0, stdout: "[[offline]]\ntopic = \"jobs/#\"\nmode = \"queue\"\nmax_messages = 50\n", stderrs: []string{"configuration ok"}},
		{name: "offline rule errors", path: write("offline-bad.toml", "[[offline]]\ntopic = \"jobs/#\"\nmode = \"fifo\"\nretention = \"1h\"\n"),
			code: 1, stderrs: []string{`offline-bad.toml:3: offline[0].mode: invalid value "fifo"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check-config", tc.path}, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
			for _, s := range tc.stderrs {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			if code == 0 {
				if _, err := conf.Parse(&out, "printed"); err != nil {
					t.Errorf("printed config does not load: %v", err)
				}
			}
		})
	}
}

// TestMain_MemoryLimitAndGCPercent runs the binary with memory_limit and
// gc_percent, with neither, and with GOGC in the environment, and reads
// what the Go runtime uses from /metrics: the gc_percent target (200 by
// default) only while messages pour in, at most 100 before and after;
// GOGC's at all times.
func TestMain_MemoryLimitAndGCPercent(t *testing.T) {
	const noLimit = "9.223372036854776e+18"
	for _, tc := range []struct {
		name, toml, env string
		idle, busy      string // gatemq_go_gc_percent
		limit           string // gatemq_go_memory_limit_bytes
	}{
		{"set", "memory_limit = \"64MiB\"\ngc_percent = 150\n", "", "100", "150", "67108864"},
		{"default", "", "", "100", "200", noLimit},
		{"GOGC", "", "GOGC=80", "80", "80", noLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "gatemq.toml")
			if err := os.WriteFile(path, []byte(tc.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			addr := testkit.FreeAddr(t)
			cmd := exec.Command(buildBinary(t), "-listen", addr, "-data-dir", dir, "-config", path)
			cmd.Env = append(os.Environ(), "GOGC=", "GOMEMLIMIT=")
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			logs := runBroker(t, cmd, addr)
			metricsShow := func(gc string) func() error {
				want := []string{"gatemq_go_gc_percent " + gc + "\n", "gatemq_go_memory_limit_bytes " + tc.limit + "\n"}
				return func() error {
					resp, err := unixClient(filepath.Join(dir, "admin.sock")).Get("http://gatemq/metrics")
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						return err
					}
					for _, w := range want {
						if !strings.Contains(string(body), w) {
							return fmt.Errorf("/metrics lacks %q", w)
						}
					}
					return nil
				}
			}
			testkit.WaitFor(t, 10*time.Second, metricsShow(tc.idle))

			// Load: QoS 0 PUBLISHes of 4 KiB, each a new body buffer in
			// the broker, until the busy target shows (at most 15 s).
			nc, _ := dialConnect(t, addr, packet.V311, "loader")
			stop := make(chan struct{})
			loaded := make(chan error, 1)
			go func() {
				pub := packet.Append(nil, &packet.Publish{Topic: "load/gc", Payload: make([]byte, 4096)}, packet.V311)
				batch := bytes.Repeat(pub, 16)
				deadline := time.Now().Add(15 * time.Second)
				for time.Now().Before(deadline) {
					select {
					case <-stop:
						loaded <- nil
						return
					default:
					}
					if _, err := nc.Write(batch); err != nil {
						loaded <- err
						return
					}
				}
				loaded <- errors.New("load ran 15 s")
			}()
			testkit.WaitFor(t, 15*time.Second, metricsShow(tc.busy))
			close(stop)
			if err := <-loaded; err != nil {
				t.Fatal(err)
			}
			nc.Close()
			testkit.WaitFor(t, 10*time.Second, metricsShow(tc.idle))

			if tc.name == "set" && !strings.Contains(logs.String(), `msg="memory limit set" memory_limit=64MiB`) {
				t.Errorf("no memory limit in the log:\n%s", logs)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		})
	}
}
