package broker

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// Helpers for the raw-client tests of raw_v3_test.go, malformed_test.go
// and conformance_test.go.

// expectNoPacketClose checks that the server closes the connection
// without sending anything: the 3.x answer to most protocol errors, and
// the answer to a first packet other than CONNECT.
func (c *rawClient) expectNoPacketClose() {
	c.t.Helper()
	if got := c.expectClosed(); len(got) != 0 {
		c.t.Fatalf("server sent %s before closing, want a plain close", describe(got))
	}
}

// expectDisconnectIn checks that the server sends a v5 DISCONNECT with
// one of reasons, as its last packet, and closes the connection. Packets before the DISCONNECT
// are allowed (an acknowledgement may already be on its way).
func (c *rawClient) expectDisconnectIn(reasons ...packet.Reason) {
	c.t.Helper()
	got := c.expectClosed()
	if len(got) == 0 {
		c.t.Fatalf("server closed without DISCONNECT, want reason %v", reasons)
	}
	d, ok := got[len(got)-1].(*packet.Disconnect)
	if !ok {
		c.t.Fatalf("server sent %s and closed, want DISCONNECT %v last", describe(got), reasons)
	}
	if !slices.Contains(reasons, d.Reason) {
		c.t.Fatalf("DISCONNECT reason %#02x (%v), want one of %v", byte(d.Reason), d.Reason, reasons)
	}
}

// expectConnackClose checks that the server answers CONNECT with a
// CONNACK carrying reason and then closes the connection.
func (c *rawClient) expectConnackClose(reason packet.Reason) {
	c.t.Helper()
	got := c.expectClosed()
	if len(got) != 1 {
		c.t.Fatalf("server sent %s, want one CONNACK %v then close", describe(got), reason)
	}
	ack, ok := got[0].(*packet.Connack)
	if !ok || ack.Reason != reason || ack.SessionPresent {
		c.t.Fatalf("server sent %s, want CONNACK %#02x (%v) without session present", describe(got), byte(reason), reason)
	}
}

func describe(pks []packet.Packet) string {
	if len(pks) == 0 {
		return "nothing"
	}
	s := ""
	for i, pk := range pks {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s%+v", pk.Type(), pk)
	}
	return s
}

// ping sends PINGREQ and requires PINGRESP: the connection is alive and
// the server processes its packets.
func (c *rawClient) ping() {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	if pk := c.recv(); pk.Type() != packet.PINGRESP {
		c.t.Fatalf("got %s %+v, want PINGRESP", pk.Type(), pk)
	}
}

// disconnect sends DISCONNECT and waits for the server to close.
func (c *rawClient) disconnect() {
	c.t.Helper()
	c.send(&packet.Disconnect{})
	c.expectClosed()
}

// recvPublishes reads n PUBLISH packets and completes their QoS 1 and 2
// exchanges, whatever order the server interleaves them in (a PUBREL may
// come after the next PUBLISH).
func (c *rawClient) recvPublishes(n int) []*packet.Publish {
	c.t.Helper()
	var out []*packet.Publish
	awaitRel := 0
	for len(out) < n || awaitRel > 0 {
		switch pk := c.recv().(type) {
		case *packet.Publish:
			out = append(out, pk)
			switch pk.QoS {
			case 1:
				c.send(&packet.Puback{PacketID: pk.PacketID})
			case 2:
				c.send(&packet.Pubrec{PacketID: pk.PacketID})
				awaitRel++
			}
		case *packet.Pubrel:
			c.send(&packet.Pubcomp{PacketID: pk.PacketID})
			awaitRel--
		default:
			c.t.Fatalf("got %s %+v, want PUBLISH or PUBREL", pk.Type(), pk)
		}
	}
	if len(out) > n {
		c.t.Fatalf("got %d messages, want %d: %s", len(out), n, describe(pubsToPackets(out)))
	}
	return out
}

func pubsToPackets(ps []*packet.Publish) []packet.Packet {
	out := make([]packet.Packet, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

var servingSeq atomic.Uint64

// checkServing checks that the broker at addr still accepts clients and
// routes a message between them: the broker survived whatever came before.
func checkServing(t testing.TB, addr string) {
	t.Helper()
	n := servingSeq.Add(1)
	topic := fmt.Sprintf("serving/check/%d", n)
	sub := dialRaw(t, addr, packet.V311)
	sub.mustConnect(fmt.Sprintf("serving-sub-%d", n), true)
	if ack := sub.subscribe(1, packet.Subscription{Filter: topic, QoS: 1}); ack.Reasons[0] != packet.GrantedQoS1 {
		t.Fatalf("serving check: suback %+v", ack)
	}
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect(fmt.Sprintf("serving-pub-%d", n), true)
	pub.publishAck(&packet.Publish{Topic: topic, QoS: 1, PacketID: 2, Payload: []byte("alive")})
	if p := sub.recvPublishAck(); p.Topic != topic || string(p.Payload) != "alive" {
		t.Fatalf("serving check: got %+v", p)
	}
	sub.disconnect()
	pub.disconnect()
}

// waitSessionGone waits until the broker has no session for clientID.
func waitSessionGone(t testing.TB, s *Server, clientID string) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if s.sessions.Get(clientID) != nil {
			return fmt.Errorf("session %q still present", clientID)
		}
		return nil
	})
}

// waitOffline waits until the broker has an offline session for clientID.
func waitOffline(t testing.TB, s *Server, clientID string) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		sess := s.sessions.Get(clientID)
		if sess == nil || sess.Online() {
			return fmt.Errorf("session %q missing or online", clientID)
		}
		return nil
	})
}
