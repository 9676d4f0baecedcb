package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// newTestBroker starts a Server on 127.0.0.1:0 and returns it with its
// address; it is closed when the test ends.
func newTestBroker(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(opts)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve returned %v", err)
		}
	})
	return s, ln.Addr().String()
}

func testOptions() Options {
	o := DefaultOptions()
	o.SysInterval = 0
	return o
}

// rawClient speaks MQTT packet by packet, for tests of 3.x clients and of
// malformed input.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	v  packet.Version
}

func dialRaw(t testing.TB, addr string, v packet.Version) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
}

func (c *rawClient) send(pk packet.Packet) {
	c.t.Helper()
	c.sendRaw(packet.Append(nil, pk, c.v))
}

func (c *rawClient) sendRaw(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads the next packet, failing the test after 5 s.
func (c *rawClient) recv() packet.Packet {
	c.t.Helper()
	pk, err := c.tryRecv(5 * time.Second)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return pk
}

func (c *rawClient) tryRecv(d time.Duration) (packet.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	return packet.Read(c.br, c.v, 0)
}

// expectClosed checks that the server closes the connection, allowing
// the packets it may send first (returned).
func (c *rawClient) expectClosed() []packet.Packet {
	c.t.Helper()
	var got []packet.Packet
	for {
		pk, err := c.tryRecv(5 * time.Second)
		if err == nil {
			got = append(got, pk)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after 5s; received %v", got)
		}
		return got
	}
}

// connect sends CONNECT and returns the CONNACK.
func (c *rawClient) connect(cp *packet.Connect) *packet.Connack {
	c.t.Helper()
	if cp.Version == 0 {
		cp.Version = c.v
	}
	if cp.ProtocolName == "" {
		cp.ProtocolName = "MQTT"
		if cp.Version == packet.V31 {
			cp.ProtocolName = "MQIsdp"
		}
	}
	c.send(cp)
	pk := c.recv()
	ack, ok := pk.(*packet.Connack)
	if !ok {
		c.t.Fatalf("got %T, want CONNACK", pk)
	}
	return ack
}

func (c *rawClient) mustConnect(id string, clean bool) *packet.Connack {
	c.t.Helper()
	ack := c.connect(&packet.Connect{ClientID: id, CleanStart: clean, KeepAlive: 60})
	if ack.Reason != packet.Success {
		c.t.Fatalf("connect %q: %v", id, ack.Reason)
	}
	return ack
}

func (c *rawClient) subscribe(id uint16, subs ...packet.Subscription) *packet.Suback {
	c.t.Helper()
	c.send(&packet.Subscribe{PacketID: id, Subscriptions: subs})
	for {
		pk := c.recv()
		if ack, ok := pk.(*packet.Suback); ok {
			return ack
		}
		c.t.Fatalf("got %T, want SUBACK", pk)
	}
}

// recvPublish reads packets until a PUBLISH arrives.
func (c *rawClient) recvPublish() *packet.Publish {
	c.t.Helper()
	pk := c.recv()
	p, ok := pk.(*packet.Publish)
	if !ok {
		c.t.Fatalf("got %T %+v, want PUBLISH", pk, pk)
	}
	return p
}

// expectNothing checks that nothing arrives for d.
func (c *rawClient) expectNothing(d time.Duration) {
	c.t.Helper()
	if pk, err := c.tryRecv(d); err == nil {
		c.t.Fatalf("unexpected %T %+v", pk, pk)
	}
}

func goroutines() int { return runtime.NumGoroutine() }

var _ = fmt.Sprint
