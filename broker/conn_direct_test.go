//go:build unix

package broker

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// dialSmallWindow dials addr with a receive buffer of size bytes, set
// before the handshake so that the window is small from the start.
func dialSmallWindow(t *testing.T, addr string, v packet.Version, size int) *rawClient {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
}

// serverConn returns the broker's connection of clientID.
func serverConn(t *testing.T, s *Server, clientID string) *conn {
	t.Helper()
	var found *conn
	testkit.WaitFor(t, 5*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			if c.connected.Load() && c.clientID == clientID {
				found = c
				return nil
			}
		}
		return fmt.Errorf("no connection of %q", clientID)
	})
	return found
}

// durableSubscriber leaves an offline durable session subscribed to
// filter, so that what is published to it is stored and acknowledged
// after the commit.
func durableSubscriber(t *testing.T, b *durableBroker, clientID, filter string) {
	t.Helper()
	sub := dialRaw(t, b.addr, packet.V311)
	sub.mustConnect(clientID, false)
	sub.subscribe(1, packet.Subscription{Filter: filter, QoS: 1})
	sub.disconnect()
	waitOffline(t, b.srv, clientID)
}

// expectPubacks reads the PUBACKs of packet identifiers from..to, in
// that order, each once: a PINGRESP asked for after them comes next.
func (c *rawClient) expectPubacks(from, to uint16) {
	c.t.Helper()
	for id := from; id <= to; id++ {
		a, ok := c.recv().(*packet.Puback)
		if !ok || a.PacketID != id || a.Reason.Failed() {
			c.t.Fatalf("got %+v, want PUBACK %d", a, id)
		}
	}
	c.ping()
}

func TestConn_DirectWriterPlainTCPOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	cases := []struct {
		name string
		nc   net.Conn
		want bool
	}{
		{"tcp", cc, true},
		{"tls", tls.Client(cc, &tls.Config{}), false},
		{"pipe", p1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := newDirectWriter(tc.nc) != nil; got != tc.want || hasDirectWriter(tc.nc) != tc.want {
				t.Fatalf("direct writer: %v (has %v), want %v", got, hasDirectWriter(tc.nc), tc.want)
			}
		})
	}
}

// TestConn_StoredAcksShortWrite: a publisher that does not read while
// thousands of its durable QoS 1 messages are committed fills its socket,
// so that the store's goroutine comes up short writing their PUBACKs and
// leaves the rest to the writer goroutine. Once it reads, every PUBACK
// arrives once, in the order of the PUBLISHes.
func TestConn_StoredAcksShortWrite(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	durableSubscriber(t, b, "short-sub", "short/#")

	pub := dialSmallWindow(t, b.addr, packet.V311, 1024)
	pub.mustConnect("short-pub", true)
	sc := serverConn(t, b.srv, "short-pub")
	if !sc.plainTCP {
		t.Fatal("a plain TCP connection not taken for one")
	}
	if err := sc.nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}

	// 20,000 PUBACKs are 80,000 bytes: far more than both sockets hold.
	const n = 20000
	var msgs []byte
	for id := 1; id <= n; id++ {
		msgs = packet.Append(msgs, &packet.Publish{Topic: "short/t", QoS: 1, PacketID: uint16(id), Payload: []byte("x")}, packet.V311)
	}
	sent := make(chan error, 1)
	go func() {
		pub.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := pub.nc.Write(msgs)
		sent <- err
	}()
	testkit.WaitFor(t, 20*time.Second, func() error {
		if b.srv.stats.acksDirectShort.Load() == 0 {
			return fmt.Errorf("no short write yet; %d direct writes", b.srv.stats.acksDirect.Load())
		}
		return nil
	})
	// The window opens wide, or the rest would trickle in with the
	// persist timer: a few hundred bytes each 200 ms.
	if err := pub.nc.(*net.TCPConn).SetReadBuffer(256 << 10); err != nil {
		t.Fatal(err)
	}
	pub.expectPubacks(1, n)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d direct writes, %d short", b.srv.stats.acksDirect.Load(), b.srv.stats.acksDirectShort.Load())
}

// TestConn_StoredAcksDeadlinePassed: the write deadline a writer
// goroutine set long ago has passed, so the store's goroutine cannot
// write; the writer goroutine writes the PUBACK with a new deadline, and
// the store's goroutine writes the next ones again.
func TestConn_StoredAcksDeadlinePassed(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	durableSubscriber(t, b, "late-sub", "late/#")
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("late-pub", true)
	sc := serverConn(t, b.srv, "late-pub")
	short := &b.srv.stats.acksDirectShort
	id := uint16(0)
	publish := func() {
		t.Helper()
		id++
		if r := pub.publishAck(&packet.Publish{Topic: "late/t", QoS: 1, PacketID: id, Payload: []byte("x")}); r.Failed() {
			t.Fatalf("PUBACK %d: %v", id, r)
		}
	}
	// A commit quicker than the reader's handling of the PUBLISH leaves
	// the PUBACK to the reader, which renews the deadline: try again.
	for short.Load() == 0 && id < 20 {
		testkit.WaitFor(t, 5*time.Second, func() error {
			if sc.writing.Load() {
				return fmt.Errorf("a writer still runs")
			}
			return nil
		})
		if err := sc.nc.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		publish()
	}
	if short.Load() != 1 {
		t.Fatalf("%d writes left to the writer goroutine after %d PUBLISHes, want 1", short.Load(), id)
	}
	for range 3 {
		publish()
	}
	if short.Load() != 1 {
		t.Fatalf("%d writes left to the writer goroutine, want 1: the deadline is renewed", short.Load())
	}
	pub.ping()
}

// TestConn_StoredAcksOneWritePerCommit: a publisher's PUBACKs that one
// commit made ready go out in one write, not one each.
func TestConn_StoredAcksOneWritePerCommit(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	durableSubscriber(t, b, "group-sub", "group/#")
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("group-pub", true)

	const n = 200
	var msgs []byte
	for id := 1; id <= n; id++ {
		msgs = packet.Append(msgs, &packet.Publish{Topic: "group/t", QoS: 1, PacketID: uint16(id), Payload: []byte("x")}, packet.V311)
	}
	commits := b.store.Stats().Commits
	writes := b.srv.stats.acksDirect.Load()
	if _, err := pub.nc.Write(msgs); err != nil {
		t.Fatal(err)
	}
	pub.expectPubacks(1, n)
	commits = b.store.Stats().Commits - commits
	writes = b.srv.stats.acksDirect.Load() - writes
	if writes == 0 || writes > commits {
		t.Fatalf("%d PUBACKs in %d writes for %d commits: want at most one write per commit", n, writes, commits)
	}
	t.Logf("%d PUBACKs in %d writes, %d commits", n, writes, commits)
}
