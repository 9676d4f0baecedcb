package broker

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
)

// v5Client is a paho.golang MQTT v5 client connected to a test broker. It
// collects the messages and server DISCONNECTs it receives.
type v5Client struct {
	*paho.Client
	t       testing.TB
	nc      net.Conn
	connack *paho.Connack
	msgs    chan *paho.Publish
	discs   chan *paho.Disconnect
}

// connectV5 connects a paho client with cp and fails the test unless the
// broker accepts it. KeepAlive defaults to 60 s when zero in cp.
func connectV5(t testing.TB, addr string, cp *paho.Connect) *v5Client {
	t.Helper()
	c, err := tryConnectV5(t, addr, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	return c
}

// tryConnectV5 is connectV5 returning the error; the client's CONNACK, if
// any, is in connack either way.
func tryConnectV5(t testing.TB, addr string, cp *paho.Connect) (*v5Client, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5Client{
		t:     t,
		nc:    nc,
		msgs:  make(chan *paho.Publish, 1000),
		discs: make(chan *paho.Disconnect, 1),
	}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: cp.ClientID,
		Conn:     nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				c.msgs <- pr.Packet
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.discs <- d:
			default:
			}
		},
	})
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 60
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.connack, err = c.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		return c, err
	}
	t.Cleanup(func() {
		nc.Close()
		<-c.Done()
	})
	return c, nil
}

// subscribe subscribes to the filters with QoS 2 and the default options.
func (c *v5Client) subscribe(filters ...string) {
	c.t.Helper()
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: 2})
	}
	c.subscribeWith(s)
}

// subscribeWith sends s and fails the test unless every filter is granted.
func (c *v5Client) subscribeWith(s *paho.Subscribe) *paho.Suback {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := c.Subscribe(ctx, s)
	if err != nil {
		c.t.Fatalf("subscribe %+v: %v", s.Subscriptions, err)
	}
	return ack
}

// publish publishes p and fails the test on error; for QoS 1 and 2 it
// waits for the acknowledgement.
func (c *v5Client) publish(p *paho.Publish) *paho.PublishResponse {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, p)
	if err != nil {
		c.t.Fatalf("publish %q: %v", p.Topic, err)
	}
	return r
}

// recv returns the next message received, failing the test after 5 s.
func (c *v5Client) recv() *paho.Publish {
	c.t.Helper()
	select {
	case p := <-c.msgs:
		return p
	case <-time.After(5 * time.Second):
		c.t.Fatalf("%s: no message within 5s", c.ClientID())
		return nil
	}
}

// expectNothing checks that no message arrives for d.
func (c *v5Client) expectNothing(d time.Duration) {
	c.t.Helper()
	select {
	case p := <-c.msgs:
		c.t.Fatalf("%s: unexpected message %q %q", c.ClientID(), p.Topic, p.Payload)
	case <-time.After(d):
	}
}

// recvDisconnect returns the DISCONNECT the server sent, failing the test
// after 5 s.
func (c *v5Client) recvDisconnect() *paho.Disconnect {
	c.t.Helper()
	select {
	case d := <-c.discs:
		return d
	case <-time.After(5 * time.Second):
		c.t.Fatalf("%s: no DISCONNECT within 5s", c.ClientID())
		return nil
	}
}

// disconnect sends DISCONNECT with reason and closes the connection.
func (c *v5Client) disconnect(reason byte) {
	c.t.Helper()
	c.Disconnect(&paho.Disconnect{ReasonCode: reason})
}

// drop closes the TCP connection without DISCONNECT.
func (c *v5Client) drop() {
	c.nc.Close()
	<-c.Done()
}

// connectRaw opens a raw v5 connection and sends cp (KeepAlive 60 s unless
// set), failing the test unless the broker accepts it.
func connectRaw(t testing.TB, addr string, cp *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c := dialRaw(t, addr, packet.V5)
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 60
	}
	ack := c.connect(cp)
	if ack.Reason != packet.Success {
		t.Fatalf("connect %q: %v", cp.ClientID, ack.Reason)
	}
	return c, ack
}

// withExpiry returns v5 CONNECT properties with a Session Expiry Interval.
func withExpiry(sec uint32) packet.Properties {
	p := packet.Properties{SessionExpiry: sec}
	p.Present.Add(packet.PropSessionExpiry)
	return p
}

// expectDisconnect checks that the server sends DISCONNECT with reason
// and closes the connection.
func (c *rawClient) expectDisconnect(reason packet.Reason) {
	c.t.Helper()
	got := c.expectClosed()
	for _, pk := range got {
		if d, ok := pk.(*packet.Disconnect); ok {
			if d.Reason != reason {
				c.t.Fatalf("DISCONNECT %v, want %v", d.Reason, reason)
			}
			return
		}
	}
	c.t.Fatalf("closed without DISCONNECT %v; received %v", reason, got)
}

// recvPublishAck reads a PUBLISH, skipping nothing, and acknowledges it as
// its QoS requires (QoS 2 up to PUBCOMP).
func (c *rawClient) recvPublishAck() *packet.Publish {
	c.t.Helper()
	p := c.recvPublish()
	switch p.QoS {
	case 1:
		c.send(&packet.Puback{PacketID: p.PacketID})
	case 2:
		c.send(&packet.Pubrec{PacketID: p.PacketID})
		if r, ok := c.recv().(*packet.Pubrel); !ok || r.PacketID != p.PacketID {
			c.t.Fatalf("want PUBREL %d, got %+v", p.PacketID, r)
		}
		c.send(&packet.Pubcomp{PacketID: p.PacketID})
	}
	return p
}

// publishAck publishes p and reads its acknowledgement: the PUBACK reason
// for QoS 1, the PUBREC reason for QoS 2 (after which PUBREL and PUBCOMP
// complete the exchange), Success for QoS 0.
func (c *rawClient) publishAck(p *packet.Publish) packet.Reason {
	c.t.Helper()
	c.send(p)
	switch p.QoS {
	case 1:
		a, ok := c.recv().(*packet.Puback)
		if !ok || a.PacketID != p.PacketID {
			c.t.Fatalf("want PUBACK %d, got %+v", p.PacketID, a)
		}
		return a.Reason
	case 2:
		a, ok := c.recv().(*packet.Pubrec)
		if !ok || a.PacketID != p.PacketID {
			c.t.Fatalf("want PUBREC %d, got %+v", p.PacketID, a)
		}
		if a.Reason.Failed() {
			return a.Reason
		}
		c.send(&packet.Pubrel{PacketID: p.PacketID})
		if r, ok := c.recv().(*packet.Pubcomp); !ok || r.PacketID != p.PacketID {
			c.t.Fatalf("want PUBCOMP %d, got %+v", p.PacketID, r)
		}
		return a.Reason
	}
	return packet.Success
}

// isClosed reports whether err says the connection is closed rather than
// that the read timed out.
func isClosed(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
