package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"gatemq/internal/testkit"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// mosquittoConf is the broker configuration of the tests: like the
// harness's, queues large enough that no run drops a message.
const mosquittoConf = `listener %s 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_inflight_messages 100
set_tcp_nodelay true
log_type error
log_type warning
`

// startMosquitto runs a mosquitto broker on a free loopback port for the
// duration of the test and returns its address and pid. It skips the test
// when mosquitto is not installed.
func startMosquitto(t *testing.T) (addr string, pid int) {
	t.Helper()
	path, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto not installed (apt-get install mosquitto)")
		}
		path = "/usr/sbin/mosquitto"
	}
	// The port may be taken between freePort and mosquitto's bind: retry.
	for attempt := 1; ; attempt++ {
		addr, pid, err := tryMosquitto(t, path, attempt)
		if err == nil {
			return addr, pid
		}
		if attempt == 3 {
			t.Fatal(err)
		}
	}
}

func tryMosquitto(t *testing.T, path string, attempt int) (addr string, pid int, err error) {
	addr = testkit.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), fmt.Sprintf("mosquitto-%d.conf", attempt))
	if err := os.WriteFile(conf, fmt.Appendf(nil, mosquittoConf, port), 0o644); err != nil {
		t.Fatal(err)
	}
	var output testkit.Buffer
	cmd := exec.Command(path, "-c", conf)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, cmd.Process.Pid, nil
		}
		select {
		case <-exited:
			return "", 0, fmt.Errorf("mosquitto exited: %s", output.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("mosquitto not listening on %s after 10s: %s", addr, output.String())
		}
	}
}

// runBench runs `gatemq bench args...` and returns the exit code and
// output, failing the test if it takes more than a minute.
func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb testkit.Buffer
	code = run(ctx, args, &out, &errb)
	if ctx.Err() != nil {
		t.Fatalf("bench %v did not finish in a minute", args)
	}
	return code, out.String(), errb.String()
}

// decode parses the one JSON result of a -json run.
func decode[T any](t *testing.T, stdout string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader([]byte(stdout)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("parse result %q: %v", stdout, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON object in %q", stdout)
	}
	return v
}
