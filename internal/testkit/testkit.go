// Package testkit holds what the packages' tests share for waiting on
// things that happen in other goroutines or processes: polling a
// condition (WaitFor), a buffer to read while a logger or a process
// writes it (Buffer), and a loopback address to listen on (FreeAddr).
// Only tests import it.
package testkit

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// WaitFor polls f every 5ms until it returns nil, failing the test after
// timeout with f's last error. Polling, not a fixed sleep, keeps a test
// as fast as what it waits for (nats-server's checkFor).
func WaitFor(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads: a test
// reads what a logger or a process has written so far.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FreeAddr returns a 127.0.0.1 address whose TCP port was free a moment
// ago: for a listener that must know its address before it starts, or
// start again on it. Where port 0 will do, use that.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
