package crash

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/boltstore"
)

// buildBroker builds the gatemq binary into a temporary directory;
// CRASH_RACE=1 builds it with the race detector.
func buildBroker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatemq")
	args := []string{"build", "-o", bin}
	if os.Getenv("CRASH_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "gatemq")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build gatemq: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on,
// below the kernel's ephemeral range: the broker binds it again after
// every kill, and a port from that range could meanwhile be taken as the
// local port of some outgoing connection (as bench.sh's free_port).
func freeAddr(t *testing.T) string {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				lo = n
			}
		}
	}
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+rand.IntN(lo-10000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// brokerProc is the broker binary run on one data directory and address,
// started again after each kill.
type brokerProc struct {
	bin, config, dataDir, addr, logPath string

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	err    error         // cmd's exit, once exited is closed
}

// start starts the broker; it does not wait for it to listen.
func (b *brokerProc) start() error {
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== start %s =====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(b.bin, "-config", b.config, "-listen", b.addr, "-data-dir", b.dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start broker: %w", err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() {
		b.err = cmd.Wait()
		logf.Close()
		close(b.exited)
	}()
	return nil
}

// waitReady polls until the broker accepts connections, reporting how
// long that took from start; it fails when the process exits first or
// timeout passes.
func (b *brokerProc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-b.exited:
			return fmt.Errorf("broker exited before listening: %v (log %s)", b.err, b.logPath)
		default:
		}
		if nc, err := net.DialTimeout("tcp", b.addr, 100*time.Millisecond); err == nil {
			nc.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker not listening on %s after %s (log %s)", b.addr, timeout, b.logPath)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone. It may run
// on another goroutine than start, which it must follow.
func (b *brokerProc) kill() error {
	if b.cmd == nil {
		return nil
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		return errors.New("broker still running 10s after SIGKILL")
	}
	return nil
}

// checkAfter checks, once the broker has stopped, that its log holds no
// panic or data race and that its store passes boltstore's Check.
func (b *brokerProc) checkAfter(t *testing.T) {
	t.Helper()
	if bad := logProblems(b.logPath); len(bad) > 0 {
		t.Errorf("broker log has %d panics or data races, first: %s", len(bad), bad[0])
	}
	st, err := boltstore.Open(filepath.Join(b.dataDir, "ds"), nil)
	if err != nil {
		t.Fatalf("open the store after the test: %v", err)
	}
	if err := st.Check(); err != nil {
		t.Errorf("store integrity: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// alive reports whether the process has not exited.
func (b *brokerProc) alive() bool {
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// stop asks the broker to shut down (SIGTERM) and waits, killing it
// after timeout. It returns the process's exit error, if any.
func (b *brokerProc) stop(timeout time.Duration) error {
	if b.cmd == nil {
		return nil
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(timeout):
		b.kill()
		return fmt.Errorf("broker did not stop within %s of SIGTERM", timeout)
	}
	return b.err
}
