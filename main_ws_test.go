package main

import (
	"context"
	"fmt"
	"gatemq/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mqttjsPrefix is where MQTT.js is installed (npm install --prefix), by
// make test-deps or by the test itself; it is gitignored.
const mqttjsPrefix = ".cache/npm"

// mqttjs returns the node binary with MQTT.js installed, or skips the
// test saying why not.
func mqttjs(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the MQTT.js WebSocket test (Debian: apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(mqttjsPrefix, "node_modules", "mqtt", "package.json")); err == nil {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("MQTT.js is not installed and npm is missing: skipping the MQTT.js WebSocket test (make test-deps installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, npm, "install", "--no-save", "--no-audit", "--no-fund",
		"--prefix", mqttjsPrefix, "mqtt@5").CombinedOutput()
	if err != nil {
		t.Skipf("cannot install MQTT.js (npm install mqtt@5: %v): skipping the MQTT.js WebSocket test\n%s", err, out)
	}
	return node
}

// TestMain_WebSocketMQTTJS runs scripts/ws_mqttjs_test.mjs, MQTT.js
// under node, against the binary's ws and wss listeners: a subscribe and
// publish round trip in MQTT 3.1, 3.1.1 and 5.0 on each.
func TestMain_WebSocketMQTTJS(t *testing.T) {
	node := mqttjs(t)
	dir := t.TempDir()
	ca := newPKICA(t)
	server := ca.issue(t, "gatemq", true)
	wsAddr, wssAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	cfg := writeTestFile(t, dir, "gatemq.toml", fmt.Appendf(nil, `[[listener]]
address = "127.0.0.1:1883"  # replaced by -listen

[[listener]]
address = %q
protocol = "ws"

[[listener]]
address = %q
protocol = "ws"
tls_cert = %q
tls_key = %q
`, wsAddr, wssAddr, writeTestFile(t, dir, "server.pem", server.certPEM), writeTestFile(t, dir, "server.key", server.keyPEM)))
	_, _, logs := startBroker(t, "-config", cfg)
	waitListening(t, wsAddr)
	waitListening(t, wssAddr)
	caFile := writeTestFile(t, dir, "ca.pem", ca.pem)

	for _, url := range []string{"ws://" + wsAddr + "/mqtt", "wss://" + wssAddr + "/mqtt"} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := []string{"scripts/ws_mqttjs_test.mjs", url}
			if strings.HasPrefix(url, "wss:") {
				args = append(args, caFile)
			}
			cmd := exec.CommandContext(ctx, node, args...)
			cmd.Env = append(os.Environ(), "MQTTJS_PREFIX="+mqttjsPrefix)
			out, err := cmd.CombinedOutput()
			t.Logf("MQTT.js:\n%s", out)
			if err != nil {
				t.Fatalf("MQTT.js round trips failed: %v\nbroker log:\n%s", err, logs)
			}
			for _, v := range []string{"v3", "v4", "v5"} {
				if !strings.Contains(string(out), "ok "+v+" ") {
					t.Errorf("no round trip for MQTT.js protocolVersion %s", v[1:])
				}
			}
		})
	}
}
