package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// TestMain_AdminSocket runs the binary and reads /metrics over its admin
// socket (curl --unix-socket), then lists and kicks clients with the
// commands, and changes the log level with SIGHUP.
func TestMain_AdminSocket(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatemq.toml")
	writeCfg := func(level string) {
		if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("[log]\nlevel = %q\n", level)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("info")
	cmd, addr, logs := startBroker(t, "-config", cfgPath, "-data-dir", dir)
	sock := filepath.Join(dir, "admin.sock")
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	get := func(path string) (string, error) {
		resp, err := hc.Get("http://gatemq" + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		_, err := get("/readyz")
		return err
	})
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v", fi, err)
	}

	nc, br := dialConnect(t, addr, packet.V5, "dev-7")
	defer nc.Close()
	for i := range 3 {
		nc.Write(packet.Append(nil, &packet.Publish{Topic: "m/1", Payload: []byte{byte(i)}}, packet.V5))
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		body, err := get("/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `gatemq_messages_received_total{qos="0"} 3`+"\n") || !strings.Contains(body, "gatemq_connections 1\n") {
			return fmt.Errorf("metrics not moved yet:\n%s", body)
		}
		return nil
	})

	bin := buildBinary(t)
	out, err := exec.Command(bin, "clients", "-config", cfgPath, "-data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dev-7") || !strings.Contains(string(out), "5.0") {
		t.Fatalf("gatemq clients: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "clients", "-data-dir", dir, "-json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"client_id": "dev-7"`) {
		t.Fatalf("gatemq clients -json: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "kick", "dev-7", "-data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kicked dev-7") {
		t.Fatalf("gatemq kick: %v\n%s", err, out)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pk, err := packet.Read(br, packet.V5, 0)
	if d, ok := pk.(*packet.Disconnect); !ok || d.Reason != packet.AdministrativeAction {
		t.Fatalf("kicked client got %v %v, want DISCONNECT 0x98", pk, err)
	}

	// SIGHUP: a bad file keeps the level; a good one changes it.
	os.WriteFile(cfgPath, []byte("[log]\nlevel = \"loud\"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "config file not applied") {
			return fmt.Errorf("no complaint about the bad file:\n%s", logs.String())
		}
		return nil
	})
	writeCfg("debug")
	cmd.Process.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "log level changed") {
			return fmt.Errorf("level not changed:\n%s", logs.String())
		}
		return nil
	})

	// Without a broker, clients reads the data directory; kick says
	// that no broker answers.
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	out, err = exec.Command(bin, "clients", "-data-dir", dir).CombinedOutput()
	if err != nil || !regexp.MustCompile(`dev-7 +offline .* kicked `).Match(out) {
		t.Fatalf("gatemq clients without a broker: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "kick", "dev-7", "-data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no broker answers") {
		t.Fatalf("gatemq kick without a broker: %v\n%s", err, out)
	}
}

// TestMain_AdminTCP serves the admin API on loopback TCP too: requests
// without the token file's bearer token get 401.
func TestMain_AdminTCP(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600)
	adminAddr := testkit.FreeAddr(t)
	cfgPath := filepath.Join(dir, "gatemq.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("[admin]\naddress = %q\ntoken_file = %q\n", adminAddr, tokenFile)), 0o600)
	startBroker(t, "-config", cfgPath)
	get := func(auth string) (int, error) {
		req, _ := http.NewRequest("GET", "http://"+adminAddr+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		_, err := get("")
		return err
	})
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer tok-123", 200}} {
		if code, err := get(tc.auth); err != nil || code != tc.want {
			t.Errorf("Authorization %q: %d %v, want %d", tc.auth, code, err, tc.want)
		}
	}
}
