package broker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

func tcpAddr(s string) net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

// TestRateLimiter_Bucket: a source gets rate connections at once, then
// rate a second; sources count apart, IPv6 ones by /64, IPv4-mapped ones
// as IPv4, and addresses that are not TCP are not limited.
func TestRateLimiter_Bucket(t *testing.T) {
	l := newRateLimiter(3)
	now := time.Now().UnixNano()
	a, b := tcpAddr("192.0.2.1:1000"), tcpAddr("192.0.2.2:1000")
	for i := range 3 {
		if !l.allow(a, now) {
			t.Fatalf("connection %d of the burst refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("fourth connection in the same instant allowed")
	}
	if !l.allow(b, now) {
		t.Fatal("another source refused")
	}
	if !l.allow(tcpAddr("[::ffff:192.0.2.2]:1"), now) || !l.allow(b, now) || l.allow(b, now) {
		t.Fatal("an IPv4-mapped address must share the IPv4 bucket")
	}
	if l.allow(a, now+int64(time.Second/3)-1) {
		t.Fatal("allowed before a token refilled")
	}
	if !l.allow(a, now+int64(time.Second/3)+1) {
		t.Fatal("refused after a token refilled")
	}
	for i := range 3 {
		if !l.allow(tcpAddr(fmt.Sprintf("[2001:db8::%d]:1", i+1)), now) {
			t.Fatalf("IPv6 connection %d refused", i)
		}
	}
	if l.allow(tcpAddr("[2001:db8::ffff:1]:1"), now) {
		t.Fatal("the same /64 must share a bucket")
	}
	if !l.allow(tcpAddr("[2001:db8:0:1::1]:1"), now) {
		t.Fatal("another /64 refused")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	for range 10 {
		if !l.allow(p1.RemoteAddr(), now) {
			t.Fatal("a pipe is not rate limited")
		}
	}
	var none *rateLimiter
	if !none.allow(a, now) || newRateLimiter(0) != nil {
		t.Fatal("rate 0 must mean no limit")
	}
}

// TestRateLimiter_TableBounded: a flood from ever new addresses cannot
// grow the table past rateTableSize; refilled buckets go first, and an
// address evicted early gets a fresh bucket (never a refusal).
func TestRateLimiter_TableBounded(t *testing.T) {
	l := newRateLimiter(1)
	now := time.Now().UnixNano()
	addr := func(i int) net.Addr {
		return tcpAddr(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))
	}
	for i := range 5 * rateTableSize {
		if !l.allow(addr(i), now) {
			t.Fatalf("first connection from source %d refused", i)
		}
		if n := l.len(); n > rateTableSize {
			t.Fatalf("%d addresses tracked, cap %d", n, rateTableSize)
		}
	}
	// A second later every bucket has refilled: one sweep empties the
	// table of them.
	later := now + int64(2*time.Second)
	l.allow(addr(99_999_999), later)
	if n := l.len(); n != 1 {
		t.Fatalf("%d addresses after the sweep, want 1", n)
	}
}

// TestLimits_ConnectionRate: connections over a listener's
// max_connection_rate are closed at once and counted; a burst's worth
// gets in.
func TestLimits_ConnectionRate(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(testOptions())
	errc := make(chan error, 1)
	go func() { errc <- s.ServeListener(ln, ListenerOptions{MaxConnectionRate: 5}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		<-errc
	})
	addr := ln.Addr().String()
	ok, refused := 0, 0
	for i := range 20 {
		c := dialRaw(t, addr, packet.V311)
		// A refused connection may be closed before the write: ignore its error.
		c.nc.Write(packet.Append(nil, &packet.Connect{ClientID: fmt.Sprintf("rate-%d", i), CleanStart: true, KeepAlive: 30}, packet.V311))
		if pk, err := c.tryRecv(5 * time.Second); err == nil && pk.Type() == packet.CONNACK {
			ok++
		} else {
			refused++
		}
	}
	// The test dials in well under a second, but a slow machine may
	// refill a token or two.
	if ok < 5 || ok > 10 || refused == 0 {
		t.Fatalf("%d connections accepted, %d refused; want the burst of 5 accepted", ok, refused)
	}
	if n := s.Stats().Limits.ConnectionsRateLimited; n != uint64(refused) {
		t.Fatalf("counted %d rate-limited connections, saw %d", n, refused)
	}
}

// TestLimits_TopicLevels: max_topic_levels refuses a deeper PUBLISH
// (v5 DISCONNECT 0x90, 3.x close), a deeper will (v5 CONNACK 0x90, 3.x
// close) and a deeper filter alone (0x8F, 0x80 in 3.x); a topic at the
// limit passes, and $share/{group}/ does not count.
func TestLimits_TopicLevels(t *testing.T) {
	t.Parallel()
	const max = 4
	o := testOptions()
	o.MaxTopicLevels = max
	s, addr := newTestBroker(t, o)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			atLimit, over := v.String()+"/b/c/d", v.String()+"/b/c/d/e"
			c := dialRaw(t, addr, v)
			c.mustConnect("levels-"+v.String(), true)
			ack := c.subscribe(1, packet.Subscription{Filter: atLimit}, packet.Subscription{Filter: over},
				packet.Subscription{Filter: "$share/g/" + atLimit}, packet.Subscription{Filter: "+/+/+/+/#"})
			refused := packet.TopicFilterInvalid
			if v != packet.V5 {
				refused = 0x80
			}
			want := []packet.Reason{0, refused, 0, refused}
			for i := range want {
				if ack.Reasons[i] != want[i] {
					t.Fatalf("SUBACK %v, want %v", ack.Reasons, want)
				}
			}
			// At the limit, and matching none of its own subscriptions.
			c.publishAck(&packet.Publish{Topic: v.String() + "/p/q/r", QoS: 1, PacketID: 2, Payload: []byte("x")})
			c.send(&packet.Publish{Topic: over, QoS: 1, PacketID: 3, Payload: []byte("x")})
			if v == packet.V5 {
				c.expectDisconnectIn(packet.TopicNameInvalid)
			} else {
				c.expectClosed()
			}

			w := dialRaw(t, addr, v)
			w.send(&packet.Connect{Version: v, ProtocolName: "MQTT", ClientID: "deep-will-" + v.String(), CleanStart: true,
				WillFlag: true, WillTopic: over, WillPayload: []byte("x")})
			if v == packet.V5 {
				w.expectConnackClose(packet.TopicNameInvalid)
			} else {
				w.expectNoPacketClose()
			}
		})
	}
	t.Cleanup(func() {
		if n := s.Stats().Limits.TopicLevelsExceeded; n != 8 {
			t.Errorf("counted %d refusals, want 8: per version a filter of 5 levels, one of 6, a PUBLISH and a will", n)
		}
	})
}

// TestLimits_MaxSubscriptions: a new filter beyond max_subscriptions gets
// 0x97 (0x80 in 3.x) alone; replacing one still works, and unsubscribing
// makes room.
func TestLimits_MaxSubscriptions(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxSubscriptions = 2
	s, addr := newTestBroker(t, o)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			id := "quota-" + v.String()
			c := dialRaw(t, addr, v)
			c.mustConnect(id, true)
			quota := packet.QuotaExceeded
			if v != packet.V5 {
				quota = 0x80
			}
			ack := c.subscribe(1, packet.Subscription{Filter: "a"}, packet.Subscription{Filter: "b"},
				packet.Subscription{Filter: "c"}, packet.Subscription{Filter: "a", QoS: 1})
			want := []packet.Reason{0, 0, quota, 1}
			for i := range want {
				if ack.Reasons[i] != want[i] {
					t.Fatalf("SUBACK %v, want %v", ack.Reasons, want)
				}
			}
			c.send(&packet.Unsubscribe{PacketID: 2, Filters: []string{"b"}})
			c.recv()
			if ack := c.subscribe(3, packet.Subscription{Filter: "c"}); ack.Reasons[0] != 0 {
				t.Fatalf("after UNSUBSCRIBE: SUBACK %v", ack.Reasons)
			}
			if n := s.sessions.Get(id).Stats().Subscriptions; n != 2 {
				t.Fatalf("%d subscriptions, want 2", n)
			}
		})
	}
	t.Cleanup(func() {
		if n := s.Stats().Limits.SubscriptionsRefused; n != 2 {
			t.Errorf("counted %d refusals, want 2", n)
		}
	})
}

// TestLimits_UserProperties: a v5 packet with more User Properties than
// max_user_properties ends the connection with DISCONNECT 0x97, a CONNECT
// with CONNACK 0x97; at the limit they pass and are forwarded.
func TestLimits_UserProperties(t *testing.T) {
	t.Parallel()
	const max = 8
	o := testOptions()
	o.MaxUserProperties = max
	s, addr := newTestBroker(t, o)
	props := func(n int) packet.Properties {
		var p packet.Properties
		for i := range n {
			p.User = append(p.User, packet.UserProperty{Key: "k", Value: fmt.Sprint(i)})
		}
		return p
	}
	sub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "up-sub", CleanStart: true})
	sub.subscribe(1, packet.Subscription{Filter: "up", QoS: 1})
	pub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "up-pub", CleanStart: true, Properties: props(max)})
	pub.publishAck(&packet.Publish{Topic: "up", QoS: 1, PacketID: 1, Properties: props(max)})
	if p := sub.recvPublishAck(); len(p.Properties.User) != max {
		t.Fatalf("forwarded %d user properties, want %d", len(p.Properties.User), max)
	}
	pub.send(&packet.Publish{Topic: "up", QoS: 1, PacketID: 2, Properties: props(max + 1)})
	pub.expectDisconnect(packet.QuotaExceeded)

	c := dialRaw(t, addr, packet.V5)
	c.send(&packet.Connect{Version: packet.V5, ProtocolName: "MQTT", ClientID: "up-connect", CleanStart: true, Properties: props(max + 1)})
	c.expectConnackClose(packet.QuotaExceeded)
	if n := s.Stats().Limits.UserPropertiesExceeded; n != 2 {
		t.Fatalf("counted %d refusals, want 2", n)
	}
}

// TestLimits_AwaitRelTimeout: an inbound QoS 2 message whose PUBREL
// does not come within await_rel_timeout is dropped and counted: its
// slot of the Receive Maximum is free again and its packet identifier
// starts a new message.
func TestLimits_AwaitRelTimeout(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxInflight = 1
	o.AwaitRelTimeout = 200 * time.Millisecond
	s, addr := newTestBroker(t, o)
	sub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "rel-sub", CleanStart: true})
	sub.subscribe(1, packet.Subscription{Filter: "rel", QoS: 2})
	pub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "rel-pub", CleanStart: true})
	send := func(payload string) {
		t.Helper()
		pub.send(&packet.Publish{Topic: "rel", QoS: 2, PacketID: 5, Payload: []byte(payload)})
		if r, ok := pub.recv().(*packet.Pubrec); !ok || r.PacketID != 5 || r.Reason.Failed() {
			t.Fatalf("want PUBREC 5, got %+v", r)
		}
	}
	start := time.Now()
	send("first")
	if p := sub.recvPublishes(1)[0]; string(p.Payload) != "first" {
		t.Fatalf("got %q", p.Payload)
	}
	// The same packet identifier again and again: a resend, not
	// delivered, until the exchange expires and it is a new message.
	for {
		send("second")
		if pk, err := sub.tryRecv(50 * time.Millisecond); err == nil {
			if p, ok := pk.(*packet.Publish); !ok || string(p.Payload) != "second" {
				t.Fatalf("got %+v, want the second message", pk)
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the exchange never expired")
		}
	}
	if d := time.Since(start); d < o.AwaitRelTimeout {
		t.Fatalf("exchange expired after %v, before the timeout of %v", d, o.AwaitRelTimeout)
	}
	if n := s.Stats().Limits.AwaitRelExpired; n != 1 {
		t.Fatalf("counted %d expired exchanges, want 1", n)
	}
}

// TestServer_CloseForcesStuckWriters: a subscriber that stops reading
// leaves its writer blocked in a socket write, and Close's DISCONNECT
// 0x8B queued behind it; Close past its deadline
// closes the socket, so every goroutine ends then rather than at the
// 30-second write timeout.
func TestServer_CloseForcesStuckWriters(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(testOptions())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	addr := ln.Addr().String()
	stuck := dialRaw(t, addr, packet.V5) // a 3.x client is closed at once: no DISCONNECT to write
	stuck.mustConnect("stuck", true)
	stuck.subscribe(1, packet.Subscription{Filter: "flood"})
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("flood-pub", true)
	payload := []byte(strings.Repeat("x", 64<<10))
	for i := range 200 { // 12 MiB: more than the socket buffers hold
		pub.send(&packet.Publish{Topic: "flood", Payload: payload})
		if i%50 == 49 {
			pub.ping()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s.Close(ctx) // deadline passes: the stuck writer is closed
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("connection goroutines still running 5s after Close's deadline")
	}
}

// TestLimits_MaxConnections: connections over a listener's cap or the
// server's cap are closed at accept, before CONNECT, and counted; one
// that ends makes room.
func TestLimits_MaxConnections(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxConnections = 3
	s := New(o)
	var addrs []string
	var serving sync.WaitGroup
	for _, max := range []int{2, 0} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		serving.Go(func() { s.ServeListener(ln, ListenerOptions{MaxConnections: max}) })
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		serving.Wait()
	})
	connect := func(addr, id string) (*rawClient, bool) {
		c := dialRaw(t, addr, packet.V311)
		c.nc.Write(packet.Append(nil, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}, packet.V311)) // may be closed already
		pk, err := c.tryRecv(5 * time.Second)
		return c, err == nil && pk.Type() == packet.CONNACK
	}
	a1, ok1 := connect(addrs[0], "a1")
	_, ok2 := connect(addrs[0], "a2")
	if !ok1 || !ok2 {
		t.Fatal("connections under the listener's cap refused")
	}
	if _, ok := connect(addrs[0], "a3"); ok {
		t.Fatal("third connection to a listener capped at 2 accepted")
	}
	if _, ok := connect(addrs[1], "b1"); !ok {
		t.Fatal("third connection to the server refused")
	}
	if _, ok := connect(addrs[1], "b2"); ok {
		t.Fatal("fourth connection to a server capped at 3 accepted")
	}
	a1.disconnect()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := s.Stats().ClientsConnected; n != 2 {
			return fmt.Errorf("%d connected", n)
		}
		return nil
	})
	if _, ok := connect(addrs[1], "b3"); !ok {
		t.Fatal("refused after a connection ended")
	}
	if n := s.Stats().Limits.ConnectionsRefused; n != 2 {
		t.Fatalf("counted %d refused connections, want 2", n)
	}
}
