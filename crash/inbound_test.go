package crash

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// rawConn is a bare v5 connection for scripted exchanges.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialV5(t *testing.T, addr, id string, clean bool) (*rawConn, *packet.Connack) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	cp := &packet.Connect{Version: packet.V5, CleanStart: clean, KeepAlive: 60, ClientID: id}
	cp.Properties.Present.Add(packet.PropSessionExpiry)
	cp.Properties.SessionExpiry = 3600
	c.send(cp)
	ca, ok := c.recv().(*packet.Connack)
	if !ok || ca.Reason.Failed() {
		t.Fatalf("%s: CONNECT not accepted: %+v", id, ca)
	}
	return c, ca
}

func (c *rawConn) send(pk packet.Packet) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.nc.Write(packet.Append(nil, pk, packet.V5)); err != nil {
		c.t.Fatalf("send %s: %v", pk.Type(), err)
	}
}

func (c *rawConn) recv() packet.Packet {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	pk, err := packet.Read(c.br, packet.V5, 1<<20)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return pk
}

// A QoS 2 exchange left open by a session that was then replaced by a
// clean start must not outlive it: after a restart, the new session's
// next PUBLISH with the same packet identifier is a new message, not a
// resend (MQTT-4.3.3: the packet identifier is the state of the session
// that received it). A stale identifier makes the broker acknowledge the
// message and drop it.
func TestCrash_CleanStartForgetsInboundQoS2(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatemq.toml")
	if err := os.WriteFile(cfg, []byte(brokerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &brokerProc{bin: buildBroker(t), config: cfg, dataDir: filepath.Join(dir, "data"),
		addr: freeAddr(t), logPath: filepath.Join(dir, "broker.log")}
	t.Cleanup(func() { b.kill() })
	start := func() {
		t.Helper()
		if err := b.start(); err != nil {
			t.Fatal(err)
		}
		if err := b.waitReady(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	start()
	sub := newSubscriber("inbound-sub", packet.V5, "inbound/#", 2, 10)
	if err := sub.connect(b.addr); err != nil {
		t.Fatal(err)
	}
	sub.disconnect()

	// The first session stores "first" and never sends PUBREL.
	p, _ := dialV5(t, b.addr, "inbound-pub", true)
	p.send(&packet.Publish{QoS: 2, PacketID: 7, Topic: "inbound/a", Payload: []byte("inbound-pub:1")})
	if rec, ok := p.recv().(*packet.Pubrec); !ok || rec.Reason.Failed() {
		t.Fatalf("want PUBREC, got %+v", rec)
	}
	p.nc.Close()
	// A clean start ends that session and its open exchange.
	p, ca := dialV5(t, b.addr, "inbound-pub", true)
	if ca.SessionPresent {
		t.Fatal("clean start: session present")
	}
	p.send(&packet.Disconnect{})
	p.nc.Close()

	if err := b.kill(); err != nil {
		t.Fatal(err)
	}
	start()
	p, ca = dialV5(t, b.addr, "inbound-pub", false)
	if !ca.SessionPresent {
		t.Fatal("the second session did not survive the restart")
	}
	p.send(&packet.Publish{QoS: 2, PacketID: 7, Topic: "inbound/a", Payload: []byte("inbound-pub:2")})
	if rec, ok := p.recv().(*packet.Pubrec); !ok || rec.Reason.Failed() {
		t.Fatalf("want PUBREC, got %+v", rec)
	}
	p.send(&packet.Pubrel{PacketID: 7})
	if comp, ok := p.recv().(*packet.Pubcomp); !ok || comp.Reason.Failed() {
		t.Fatalf("want PUBCOMP, got %+v", comp)
	}

	if err := sub.connect(b.addr); err != nil {
		t.Fatal(err)
	}
	err := waitProgress(3*time.Second, func() (int, int) {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		n := len(sub.got["inbound-pub"])
		return 2 - n, n
	})
	sub.mu.Lock()
	got := sub.got["inbound-pub"]
	sub.mu.Unlock()
	if err != nil || len(got) != 2 {
		t.Fatalf("subscriber got messages %v of inbound-pub:1 and :2 (the second was acknowledged with PUBREC and PUBCOMP)", got)
	}
}
