package broker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// Hostile-input regression tests, one per class of bug found in other
// brokers (issue 6). Each runs its own broker on 127.0.0.1 and ends by
// checking that the broker's goroutines and heap are back to what they
// were before the attack. They do not run in parallel, so that
// runtime.NumGoroutine and the heap measure this broker alone (parallel
// tests start only after them).
//
// Classes covered elsewhere as well:
//   - first packet not CONNECT: TestRawV3_FirstPacketNotConnect, and
//     garbage in TestMalformed_GoroutinesReturn;
//   - zero-length topic: the "empty topic" cases of
//     TestMalformed_AfterConnect;
//   - $SYS: TestRawV3_PublishSys; $ topics and wildcards:
//     TestServer_WildcardsAndDollarTopics, TestConformance_DollarTopics;
//   - will delay beyond session expiry: TestWill_Delay;
//   - CONNACK from a client: TestMalformed_AfterConnect,
//     TestRawV3_FirstPacketNotConnect;
//   - huge remaining length over the limit: TestMalformed_HugeRemainingLength;
//   - a resent QoS 2 PUBLISH: TestQoS_ExactlyOnce.

// heapMargin is how far above its baseline the heap may be after an
// attack: pools, maps that keep their buckets, the race detector's own.
const heapMargin = 16 << 20

// hostileBroker starts a broker for a hostile test, warms it up with a
// client that comes and goes, and returns it with a check to call when
// the attack is over (all client sockets closed): the broker's
// connections are gone, and the goroutines and heap in use are back to
// the baseline taken here.
func hostileBroker(t *testing.T, o Options) (s *Server, addr string, checkBaseline func()) {
	t.Helper()
	s, addr = newTestBroker(t, o)
	checkServing(t, addr)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := s.Stats().ClientsConnected; n != 0 {
			return fmt.Errorf("%d warm-up clients still connected", n)
		}
		return nil
	})
	goroutines, heap := runtime.NumGoroutine(), heapInUse()
	return s, addr, func() {
		t.Helper()
		testkit.WaitFor(t, 10*time.Second, func() error {
			if n := s.Stats().ClientsConnected; n != 0 {
				return fmt.Errorf("%d clients still connected", n)
			}
			if n := runtime.NumGoroutine(); n > goroutines {
				return fmt.Errorf("%d goroutines, %d before the attack", n, goroutines)
			}
			if h := heapInUse(); h > heap+heapMargin {
				return fmt.Errorf("heap in use %d MiB, %d MiB before the attack", h>>20, heap>>20)
			}
			return nil
		})
	}
}

// heapInUse returns the heap in use after a full collection (two, so
// that sync.Pool's victim cache is gone too).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// dialMany opens n TCP connections to addr from a few dialers at once,
// sends each the bytes first returns (if any) and returns them.
func dialMany(t *testing.T, addr string, n int, first func(i int) []byte) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					return
				}
				conns[i] = nc
				if first != nil {
					nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := nc.Write(first(i)); err != nil {
						t.Errorf("write %d: %v", i, err)
					}
				}
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return conns
}

// expectEOF checks that the server has closed nc (within d) without
// sending anything, then closes it.
func expectEOF(t *testing.T, nc net.Conn, d time.Duration) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(d))
	n, err := nc.Read(make([]byte, 1))
	nc.Close()
	if n != 0 || !isClosed(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
}

// TestHostile_HugeRemainingLength: 1,000 sockets that never authenticate
// announce a CONNECT as large as max_packet_size allows and send a few
// bytes of it; 1,000 more announce 100 MB. The first are held until the
// connect timeout with next to nothing allocated for their bodies (the
// broker once allocated the 1 MiB each announced, 1 GB in all); the
// others are closed at once from their fixed header.
func TestHostile_HugeRemainingLength(t *testing.T) {
	const n = 1000
	o := testOptions()
	o.ConnectTimeout = 3 * time.Second
	s, addr, checkBaseline := hostileBroker(t, o)
	base := heapInUse()

	rem := o.MaxPacketSize - 4 // 1 + 3 bytes of Remaining Length + body = the limit
	start := time.Now()
	held := dialMany(t, addr, n, func(int) []byte {
		return cat([]byte{0x10}, vbi(rem), str("MQTT"), []byte{4, 2, 0, 30}, str("huge"))
	})
	testkit.WaitFor(t, 10*time.Second, func() error {
		if c := s.Stats().ConnectionsTotal; c < n+2 { // and the warm-up's two
			return fmt.Errorf("%d connections accepted", c)
		}
		return nil
	})
	h := heapInUse()
	if time.Since(start) > o.ConnectTimeout {
		t.Fatalf("took %v to connect: the heap was measured after the connect timeout", time.Since(start))
	}
	t.Logf("heap in use with %d bodies of %d KiB announced: %d MiB more than before", n, rem>>10, (int64(h)-int64(base))>>20)
	if h > base+32<<20 {
		t.Fatalf("heap grew by %d MiB for %d announced bodies", (h-base)>>20, n)
	}
	for _, nc := range held {
		expectEOF(t, nc, o.ConnectTimeout+5*time.Second)
	}
	if d := time.Since(start); d < o.ConnectTimeout {
		t.Fatalf("closed after %v, before the connect timeout", d)
	}
	if c := s.Stats().Limits.ConnectTimeouts; c != n {
		t.Fatalf("%d connect timeouts counted, want %d", c, n)
	}

	start = time.Now()
	over := dialMany(t, addr, n, func(int) []byte {
		return cat([]byte{0x10}, vbi(100_000_000), str("MQTT"), []byte{5})
	})
	for _, nc := range over {
		expectEOF(t, nc, 5*time.Second)
	}
	if d := time.Since(start); d > o.ConnectTimeout {
		t.Fatalf("oversized CONNECTs closed after %v, want at once", d)
	}
	checkBaseline()
	checkServing(t, addr)
}

// TestHostile_FirstPacketNotConnect: whatever comes first instead of
// CONNECT, in any amount, closes the connection without an answer
// [MQTT-3.1.0-1].
func TestHostile_FirstPacketNotConnect(t *testing.T) {
	_, addr, checkBaseline := hostileBroker(t, testOptions())
	firsts := [][]byte{
		packet.Append(nil, &packet.Publish{Topic: "a", QoS: 1, PacketID: 1, Payload: []byte("x")}, packet.V5),
		packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#"}}}, packet.V311),
		packet.Append(nil, &packet.Pingreq{}, packet.V311),
		packet.Append(nil, &packet.Connack{}, packet.V5),
		packet.Append(nil, &packet.Auth{Reason: packet.ContinueAuthentication}, packet.V5),
		[]byte("GET /mqtt HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n\r\n"),
		{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01}, // a TLS ClientHello
		{0x00, 0x00},                         // packet type 0
	}
	conns := dialMany(t, addr, 20*len(firsts), func(i int) []byte { return firsts[i%len(firsts)] })
	for _, nc := range conns {
		expectEOF(t, nc, 5*time.Second)
	}
	checkBaseline()
}

// TestHostile_ZeroLengthTopic: an empty topic is malformed everywhere a
// topic is needed [MQTT-4.7.3-1]: a PUBLISH without a Topic Alias closes
// the connection (v5 DISCONNECT 0x82), a will refuses the CONNECT (v5
// CONNACK 0x90), and an empty filter is refused alone in the SUBACK (v5
// 0x8F, 3.x 0x80). Nothing is routed, not even to "#".
func TestHostile_ZeroLengthTopic(t *testing.T) {
	_, addr, checkBaseline := hostileBroker(t, testOptions())
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			watch := dialRaw(t, addr, v)
			watch.mustConnect("empty-watch-"+v.String(), true)
			ack := watch.subscribe(1, packet.Subscription{Filter: ""}, packet.Subscription{Filter: "#"})
			refused := packet.TopicFilterInvalid
			if v != packet.V5 {
				refused = 0x80
			}
			if ack.Reasons[0] != refused || ack.Reasons[1] != packet.GrantedQoS0 {
				t.Fatalf("SUBACK %v, want [%v granted]", ack.Reasons, refused)
			}
			watch.send(&packet.Unsubscribe{PacketID: 2, Filters: []string{""}})
			if pk := watch.recv(); pk.Type() != packet.UNSUBACK {
				t.Fatalf("got %+v, want UNSUBACK", pk)
			}

			pub := dialRaw(t, addr, v)
			pub.mustConnect("empty-pub-"+v.String(), true)
			pub.send(&packet.Publish{Topic: "", QoS: 1, PacketID: 1, Payload: []byte("x")})
			if v == packet.V5 {
				pub.expectDisconnectIn(packet.ProtocolError)
			} else {
				pub.expectNoPacketClose()
			}

			will := dialRaw(t, addr, v)
			will.send(&packet.Connect{ClientID: "empty-will-" + v.String(), CleanStart: true, KeepAlive: 30,
				WillFlag: true, WillTopic: "", WillPayload: []byte("x")})
			if v == packet.V5 {
				will.expectConnackClose(packet.TopicNameInvalid)
			} else {
				will.expectNoPacketClose()
			}
			watch.expectNothing(100 * time.Millisecond)
			watch.nc.Close()
		})
	}
	checkBaseline()
}

// TestHostile_DollarTopics defines what a topic starting with "$" that is
// not $SYS does: a client may publish and retain it, a subscriber to it
// by name or with a wildcard after the "$" level gets it, and a filter
// starting with a wildcard does not match it [MQTT-4.7.2-1], live or
// retained. Topics starting with "$SYS" are the broker's alone: v5 gets
// PUBACK 0x87, 3.x an acknowledgement, and nothing is routed or retained.
func TestHostile_DollarTopics(t *testing.T) {
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			pub := dialRaw(t, addr, v)
			pub.mustConnect("dollar-pub-"+v.String(), true)
			topic := "$foo/" + v.String()
			pub.publishAck(&packet.Publish{Topic: topic + "/retained", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("kept")})

			wild := dialRaw(t, addr, v)
			wild.mustConnect("dollar-wild-"+v.String(), true)
			wild.subscribe(1, packet.Subscription{Filter: "#", QoS: 1}, packet.Subscription{Filter: "+/" + v.String() + "/#", QoS: 1})
			named := dialRaw(t, addr, v)
			named.mustConnect("dollar-named-"+v.String(), true)
			// $SYS/broker/# and $SYS, not $SYS/#: the client events under
			// $SYS/brokers/ are the broker's own.
			named.subscribe(1, packet.Subscription{Filter: topic + "/#", QoS: 1}, packet.Subscription{Filter: "$SYS/broker/#", QoS: 1},
				packet.Subscription{Filter: "$SYS", QoS: 1})
			if p := named.recvPublishAck(); p.Topic != topic+"/retained" || !p.Retain {
				t.Fatalf("retained $ topic: got %+v", p)
			}

			if r := pub.publishAck(&packet.Publish{Topic: topic + "/live", QoS: 1, PacketID: 2, Payload: []byte("x")}); r != packet.Success {
				t.Fatalf("PUBLISH to a $ topic: %v", r)
			}
			if p := named.recvPublishAck(); p.Topic != topic+"/live" {
				t.Fatalf("got %+v", p)
			}
			for _, sys := range []string{"$SYS/broker/version", "$SYS", "$SYSTEM/x"} {
				want := packet.NotAuthorized
				if v != packet.V5 {
					want = packet.Success
				}
				if r := pub.publishAck(&packet.Publish{Topic: sys, QoS: 1, PacketID: 3, Retain: true, Payload: []byte("spoof")}); r != want {
					t.Fatalf("PUBLISH to %s: %v, want %v", sys, r, want)
				}
			}
			pub.publishAck(&packet.Publish{Topic: "plain/" + v.String(), QoS: 1, PacketID: 4, Payload: []byte("marker")})
			if p := wild.recvPublishAck(); p.Topic != "plain/"+v.String() {
				t.Fatalf("a wildcard filter got %q before the marker", p.Topic)
			}
			named.expectNothing(100 * time.Millisecond)
			for _, c := range []*rawClient{pub, wild, named} {
				c.nc.Close()
			}
		})
	}
	if n := s.Stats().Retained; n != 2 {
		t.Fatalf("%d retained messages, want the two $foo ones", n)
	}
	checkBaseline()
}

// TestHostile_DeepTopic: a topic of 65,000 levels (64,999 "/") is within
// the 65,535 bytes of a topic, but over max_topic_levels (128): the
// PUBLISH ends the connection (v5 DISCONNECT 0x90, 3.x close), the will
// refuses the CONNECT (v5 CONNACK 0x90, 3.x close), the filter, and one
// of 32,767 "+" levels, are refused alone (0x8F, 3.x 0x80). The topic
// tree never sees them.
func TestHostile_DeepTopic(t *testing.T) {
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	deep := strings.Repeat("/", 64_999)
	plus := strings.Repeat("+/", 32_766) + "+"
	if topicLevels(deep) != 65_000 || len(plus) > 65535 {
		t.Fatal("bad test topics")
	}
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			c := dialRaw(t, addr, v)
			c.mustConnect("deep-"+v.String(), true)
			ack := c.subscribe(1, packet.Subscription{Filter: deep}, packet.Subscription{Filter: plus},
				packet.Subscription{Filter: "$share/g/" + deep}, packet.Subscription{Filter: "ok"})
			refused := packet.TopicFilterInvalid
			if v != packet.V5 {
				refused = 0x80
			}
			for i, want := range []packet.Reason{refused, refused, refused, packet.GrantedQoS0} {
				if ack.Reasons[i] != want {
					t.Fatalf("SUBACK %v", ack.Reasons)
				}
			}
			c.send(&packet.Publish{Topic: deep, QoS: 1, PacketID: 2, Payload: []byte("x")})
			if v == packet.V5 {
				c.expectDisconnectIn(packet.TopicNameInvalid)
			} else {
				c.expectNoPacketClose()
			}
			w := dialRaw(t, addr, v)
			w.send(&packet.Connect{ClientID: "deep-will-" + v.String(), CleanStart: true, KeepAlive: 30,
				WillFlag: true, WillTopic: deep, WillPayload: []byte("x")})
			if v == packet.V5 {
				w.expectConnackClose(packet.TopicNameInvalid)
			} else {
				w.expectNoPacketClose()
			}
		})
	}
	// The sessions end when the broker's side of the connections is
	// cleaned up, just after the clients see them close.
	testkit.WaitFor(t, 5*time.Second, func() error {
		s.topics.mu.RLock()
		children := len(s.topics.root.children)
		s.topics.mu.RUnlock()
		if children != 0 {
			return fmt.Errorf("topic tree has %d top levels left", children)
		}
		return nil
	})
	checkBaseline()
}

// TestHostile_WillDelayBeyondExpiry: a v5 will whose delay (1 hour) is
// longer than its session's expiry (1 s) is published when the session
// ends, not an hour later [MQTT-3.1.3-9], and leaves no timer or session
// behind.
func TestHostile_WillDelayBeyondExpiry(t *testing.T) {
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	watch, _ := connectRaw(t, addr, &packet.Connect{ClientID: "delay-watch", CleanStart: true})
	watch.subscribe(1, packet.Subscription{Filter: "will/delay", QoS: 1})
	cp := &packet.Connect{ClientID: "delay", CleanStart: true, Properties: withExpiry(1),
		WillFlag: true, WillQoS: 1, WillTopic: "will/delay", WillPayload: []byte("gone")}
	cp.WillProperties.WillDelay = 3600
	cp.WillProperties.Present.Add(packet.PropWillDelay)
	c, _ := connectRaw(t, addr, cp)
	c.nc.Close()
	closed := time.Now()
	if p := watch.recvPublishAck(); string(p.Payload) != "gone" {
		t.Fatalf("got %+v", p)
	}
	if d := time.Since(closed); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("will after %v, want at the session's end, 1s", d)
	}
	waitSessionGone(t, s, "delay")
	s.mu.Lock()
	wills, expiries := len(s.wills), len(s.expiries)
	s.mu.Unlock()
	if wills != 0 || expiries != 0 {
		t.Fatalf("%d wills and %d expiry timers left", wills, expiries)
	}
	watch.nc.Close()
	checkBaseline()
}

// TestHostile_ServerPacketsFromClient: CONNACK, SUBACK, UNSUBACK and
// PINGRESP are the server's to send. From a client after CONNECT they end
// the connection (v5 DISCONNECT 0x81 or 0x82, 3.x close); as its first
// packet, see TestHostile_FirstPacketNotConnect.
func TestHostile_ServerPacketsFromClient(t *testing.T) {
	_, addr, checkBaseline := hostileBroker(t, testOptions())
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		for _, pk := range []packet.Packet{
			&packet.Connack{},
			&packet.Connack{SessionPresent: true},
			&packet.Suback{PacketID: 1, Reasons: []packet.Reason{0}},
			&packet.Unsuback{PacketID: 1, Reasons: []packet.Reason{0}},
			&packet.Pingresp{},
		} {
			t.Run(v.String()+" "+pk.Type().String(), func(t *testing.T) {
				c := dialRaw(t, addr, v)
				c.mustConnect("server-packet", true)
				c.send(pk)
				if v == packet.V5 {
					c.expectDisconnectIn(packet.MalformedPacket, packet.ProtocolError)
				} else {
					c.expectNoPacketClose()
				}
			})
		}
	}
	checkBaseline()
}

// TestHostile_QoS2SamePacketID: 10,000 QoS 2 PUBLISHes reusing one packet
// identifier without PUBREL are one message [MQTT-4.3.3-10]: delivered
// once, one exchange held, every PUBLISH answered with PUBREC; after
// PUBREL the identifier starts a new message.
func TestHostile_QoS2SamePacketID(t *testing.T) {
	const n = 10_000
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			sub := dialRaw(t, addr, v)
			sub.mustConnect("same-id-sub-"+v.String(), true)
			sub.subscribe(1, packet.Subscription{Filter: "same/id", QoS: 2})
			id := "same-id-pub-" + v.String()
			pub := dialRaw(t, addr, v)
			pub.mustConnect(id, true)

			pubrecs := make(chan error, 1)
			go func() {
				for i := range n {
					pk, err := pub.tryRecv(10 * time.Second)
					if err != nil {
						pubrecs <- fmt.Errorf("PUBREC %d: %v", i, err)
						return
					}
					if r, ok := pk.(*packet.Pubrec); !ok || r.PacketID != 7 || r.Reason.Failed() {
						pubrecs <- fmt.Errorf("got %+v, want PUBREC 7", pk)
						return
					}
				}
				pubrecs <- nil
			}()
			w := bufio.NewWriterSize(pub.nc, 64<<10)
			pub.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			for i := range n {
				w.Write(packet.Append(nil, &packet.Publish{Topic: "same/id", QoS: 2, PacketID: 7, Dup: i > 0, Payload: []byte("once")}, v))
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := <-pubrecs; err != nil {
				t.Fatal(err)
			}
			if st := s.sessions.Get(id).Stats(); st.InboundQoS2 != 1 {
				t.Fatalf("%d exchanges awaiting PUBREL, want 1", st.InboundQoS2)
			}
			if p := sub.recvPublishes(1)[0]; string(p.Payload) != "once" {
				t.Fatalf("got %q", p.Payload)
			}
			sub.expectNothing(200 * time.Millisecond)

			pub.send(&packet.Pubrel{PacketID: 7})
			if r, ok := pub.recv().(*packet.Pubcomp); !ok || r.Reason != packet.Success {
				t.Fatalf("want PUBCOMP, got %+v", r)
			}
			pub.publishAck(&packet.Publish{Topic: "same/id", QoS: 2, PacketID: 7, Payload: []byte("new")})
			if p := sub.recvPublishes(1)[0]; string(p.Payload) != "new" {
				t.Fatalf("got %q", p.Payload)
			}
			sub.nc.Close()
			pub.nc.Close()
		})
	}
	checkBaseline()
}

// TestHostile_UserProperties100k: a v5 PUBLISH and a CONNECT of 100,000
// User Properties (700 KB, within max_packet_size) are refused with 0x97
// when the 129th is read: the decode builds no 100,000-entry slice (it
// allocated 17 MB before max_user_properties).
func TestHostile_UserProperties100k(t *testing.T) {
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	var props packet.Properties
	props.User = make([]packet.UserProperty, 100_000)
	for i := range props.User {
		props.User[i] = packet.UserProperty{Key: "k", Value: "v"}
	}
	publish := packet.Append(nil, &packet.Publish{Topic: "props", QoS: 1, PacketID: 1, Properties: props}, packet.V5)
	connect := packet.Append(nil, &packet.Connect{ClientID: "props-connect", CleanStart: true, Properties: props}, packet.V5)
	props.User = nil

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "props", CleanStart: true})
	c.sendRaw(publish)
	c.expectDisconnect(packet.QuotaExceeded)
	cc := dialRaw(t, addr, packet.V5)
	cc.sendRaw(connect)
	cc.expectConnackClose(packet.QuotaExceeded)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB for two packets of %d KiB", alloc>>10, len(publish)>>10)
	if alloc > 8<<20 {
		t.Fatalf("allocated %d MiB to refuse them", alloc>>20)
	}
	if n := s.Stats().Limits.UserPropertiesExceeded; n != 2 {
		t.Fatalf("counted %d refusals, want 2", n)
	}
	publish, connect = nil, nil
	checkBaseline()
}

// TestHostile_WildcardClientIDs: "+" and "#" in client identifiers are
// accepted, as Mosquitto does, and taken literally by sessions, takeover,
// routing and no local: "#" is one client, not every client.
func TestHostile_WildcardClientIDs(t *testing.T) {
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	ids := []string{"#", "+", "+/#", "a/+/b", "a"}
	clients := make([]*rawClient, len(ids))
	for i, id := range ids {
		v := []packet.Version{packet.V5, packet.V311}[i%2]
		clients[i] = dialRaw(t, addr, v)
		clients[i].mustConnect(id, true)
		clients[i].subscribe(1, packet.Subscription{Filter: fmt.Sprintf("ids/%d", i), QoS: 1},
			packet.Subscription{Filter: "ids/all", QoS: 1, NoLocal: v == packet.V5})
	}
	if n := s.sessions.Len(); n != len(ids) {
		t.Fatalf("%d sessions for %d client IDs", n, len(ids))
	}
	pub := dialRaw(t, addr, packet.V5)
	pub.mustConnect("ids-pub", true)
	for i, id := range ids {
		if sess := s.sessions.Get(id); sess == nil || sess.ClientID != id || !sess.Online() {
			t.Fatalf("no online session for %q", id)
		}
		pub.publishAck(&packet.Publish{Topic: fmt.Sprintf("ids/%d", i), QoS: 1, PacketID: 2, Payload: []byte(id)})
	}
	for i, c := range clients {
		if p := c.recvPublishAck(); string(p.Payload) != ids[i] {
			t.Fatalf("client %q got %q", ids[i], p.Payload)
		}
	}
	// "#" publishes to all with no local: it alone does not get it back.
	clients[0].publishAck(&packet.Publish{Topic: "ids/all", QoS: 1, PacketID: 3, Payload: []byte("all")})
	for i, c := range clients[1:] {
		if p := c.recvPublishAck(); string(p.Payload) != "all" {
			t.Fatalf("client %q got %q", ids[i+1], p.Payload)
		}
	}
	clients[0].expectNothing(100 * time.Millisecond)
	// A new connection as "#" takes over "#" only.
	again := dialRaw(t, addr, packet.V5)
	again.mustConnect("#", true)
	clients[0].expectClosed()
	for _, c := range clients[1:] {
		c.ping()
	}
	if n := s.sessions.Len(); n != len(ids)+1 { // and the publisher's
		t.Fatalf("%d sessions after the takeover, want %d", n, len(ids)+1)
	}
	again.nc.Close()
	pub.nc.Close()
	for _, c := range clients {
		c.nc.Close()
	}
	checkBaseline()
}

// TestHostile_SubscribeChurn: many clients subscribe and unsubscribe
// shared and ordinary filters over one another, pipelined, while others
// publish, under -race. The tree ends empty: no subscription, no level
// left behind.
func TestHostile_SubscribeChurn(t *testing.T) {
	s, addr, checkBaseline := hostileBroker(t, testOptions())
	const churners, rounds = 12, 150
	filters := []string{"churn/+/x", "churn/#", "$share/g/churn/#", "$share/h/churn/a/x", "$share/g/churn/+/x", "churn/a/x"}
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for p := range 2 {
		pub := dialRaw(t, addr, packet.V5)
		pub.mustConnect(fmt.Sprintf("churn-pub-%d", p), true)
		go io.Copy(io.Discard, pub.nc) // PUBACKs
		pubs.Go(func() {
			w := bufio.NewWriter(pub.nc)
			for i := 0; ; i++ {
				select {
				case <-stop:
					w.Flush()
					pub.nc.Close()
					return
				default:
				}
				w.Write(packet.Append(nil, &packet.Publish{Topic: "churn/a/x", QoS: byte(i % 2), PacketID: uint16(i%65535 + 1), Payload: []byte("m")}, packet.V5))
				if i%64 == 0 {
					w.Flush()
				}
			}
		})
	}
	var wg sync.WaitGroup
	for c := range churners {
		v := []packet.Version{packet.V311, packet.V5}[c%2]
		cl := dialRaw(t, addr, v)
		cl.mustConnect(fmt.Sprintf("churner-%d", c), true)
		pong := make(chan struct{})
		go func() { // drain deliveries and acknowledgements, acking QoS 1
			defer close(pong)
			br := bufio.NewReader(cl.nc)
			for {
				pk, err := packet.Read(br, v, 0)
				if err != nil {
					return
				}
				switch p := pk.(type) {
				case *packet.Publish:
					if p.QoS == 1 {
						cl.nc.Write(packet.Append(nil, &packet.Puback{PacketID: p.PacketID}, v))
					}
				case *packet.Pingresp:
					return // the answer to the last packet: all done
				}
			}
		}()
		wg.Go(func() {
			var buf []byte
			for r := range rounds {
				id := uint16(r%60000 + 1)
				f := filters[(r+c)%len(filters)]
				g := filters[(r*7+c)%len(filters)]
				buf = packet.Append(buf[:0], &packet.Subscribe{PacketID: id, Subscriptions: []packet.Subscription{{Filter: f, QoS: 1}, {Filter: g}}}, v)
				buf = packet.Append(buf, &packet.Unsubscribe{PacketID: id, Filters: []string{g}}, v)
				cl.nc.Write(buf)
			}
			// Unsubscribe from everything, then PINGREQ: its PINGRESP
			// comes once the server has handled the UNSUBSCRIBE.
			buf = packet.Append(buf[:0], &packet.Unsubscribe{PacketID: 1, Filters: filters}, v)
			buf = packet.Append(buf, &packet.Pingreq{}, v)
			cl.nc.Write(buf)
			select {
			case <-pong:
			case <-time.After(10 * time.Second):
			}
			cl.nc.Close()
		})
	}
	wg.Wait()
	close(stop)
	pubs.Wait()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := s.topics.len(); n != 0 {
			return fmt.Errorf("%d subscriptions left in the tree", n)
		}
		s.topics.mu.RLock()
		defer s.topics.mu.RUnlock()
		if n := len(s.topics.root.children); n != 0 {
			return fmt.Errorf("%d top levels left in the tree", n)
		}
		return nil
	})
	checkBaseline()
}

// TestHostile_IdleConnections: 10,000 TCP connections that never send
// CONNECT are all closed by the connect timeout and counted, and the
// broker serves others meanwhile. At most 8,000 client sockets are open
// at once, so that client and server sockets stay under the 20,000 open
// files the test machine allows.
func TestHostile_IdleConnections(t *testing.T) {
	const n, maxOpen = 10_000, 8_000
	o := testOptions()
	o.ConnectTimeout = time.Second
	s, addr, checkBaseline := hostileBroker(t, o)
	slots := make(chan struct{}, maxOpen)
	var wg, dialers sync.WaitGroup
	var early, failed atomic.Int64
	var next atomic.Int64
	start := time.Now()
	for range 32 {
		dialers.Go(func() {
			for next.Add(1) <= n {
				slots <- struct{}{}
				// Taken before the dial: the server's clock for the
				// connection starts no earlier, however late this
				// goroutine runs after Dial returns on a loaded machine.
				opened := time.Now()
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					<-slots
					continue
				}
				wg.Go(func() {
					defer func() { <-slots }()
					defer nc.Close()
					nc.SetReadDeadline(time.Now().Add(o.ConnectTimeout + 10*time.Second))
					if m, err := nc.Read(make([]byte, 1)); m != 0 || !isClosed(err) {
						failed.Add(1)
						return
					}
					// Loose: the dialer may run late after the dial. That
					// the connect timeout closed it is the counter's to say.
					if time.Since(opened) < o.ConnectTimeout/2 {
						early.Add(1)
					}
				})
			}
		})
	}
	checkServing(t, addr) // serving while the idle ones pile up
	dialers.Wait()
	wg.Wait()
	t.Logf("%d idle connections closed in %v", n, time.Since(start))
	if f, e := failed.Load(), early.Load(); f != 0 || e != 0 {
		t.Fatalf("%d connections failed or were not closed, %d closed before the connect timeout", f, e)
	}
	if c := s.Stats().Limits.ConnectTimeouts; c != n {
		t.Fatalf("%d connect timeouts counted, want %d", c, n)
	}
	checkBaseline()
}

// TestHostile_SubscriberNeverReads: subscribers that never read (QoS 0
// and QoS 1, with tiny socket buffers) must not slow a publisher down:
// it keeps its rate and gets every PUBACK, the subscribers' queues stop
// at their cap with the rest dropped and counted, and the heap stays
// bounded.
func TestHostile_SubscriberNeverReads(t *testing.T) {
	const n, queued = 3000, 100
	o := testOptions()
	o.MaxQueued = queued
	s, addr, checkBaseline := hostileBroker(t, o)
	base := heapInUse()
	payload := make([]byte, 4<<10)

	pub := dialRaw(t, addr, packet.V5)
	pub.mustConnect("steady-pub", true)
	publishAll := func() time.Duration {
		t.Helper()
		start := time.Now()
		acks := make(chan error, 1)
		go func() {
			for i := range n {
				pk, err := pub.tryRecv(10 * time.Second)
				if err != nil {
					acks <- fmt.Errorf("PUBACK %d: %v", i, err)
					return
				}
				if a, ok := pk.(*packet.Puback); !ok || a.Reason.Failed() {
					acks <- fmt.Errorf("got %+v, want PUBACK", pk)
					return
				}
			}
			acks <- nil
		}()
		w := bufio.NewWriterSize(pub.nc, 64<<10)
		pub.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for i := range n {
			w.Write(packet.Append(nil, &packet.Publish{Topic: "steady/x", QoS: 1, PacketID: uint16(i + 1), Payload: payload}, packet.V5))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := <-acks; err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	alone := publishAll()

	var stuck []string
	var stuckConns []net.Conn
	for i, qos := range []byte{0, 1} {
		id := fmt.Sprintf("never-reads-%d", i)
		c := dialRaw(t, addr, packet.V311)
		c.nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		c.mustConnect(id, true)
		c.subscribe(1, packet.Subscription{Filter: "steady/#", QoS: qos})
		stuck = append(stuck, id)
		stuckConns = append(stuckConns, c.nc)
	}
	withStuck := publishAll()
	t.Logf("%d messages of 4 KiB: %v alone, %v with two subscribers that never read", n, alone, withStuck)
	if withStuck > 3*alone+2*time.Second {
		t.Fatalf("publisher slowed from %v to %v by subscribers that do not read", alone, withStuck)
	}
	var dropped uint64
	for _, id := range stuck {
		st := s.sessions.Get(id).Stats()
		if st.Queued != queued || st.Dropped == 0 {
			t.Fatalf("%s: %d queued, %d dropped; want the queue full at %d and drops counted", id, st.Queued, st.Dropped, queued)
		}
		dropped += st.Dropped
	}
	if got := s.Stats().PublishDropped; got != dropped {
		t.Fatalf("broker counted %d drops, sessions %d", got, dropped)
	}
	if h := heapInUse(); h > base+64<<20 {
		t.Fatalf("heap grew by %d MiB", (h-base)>>20)
	}
	pub.nc.Close()
	for _, nc := range stuckConns {
		nc.Close()
	}
	checkBaseline()
}

// TestHostile_TopicAliasMemory: an inbound topic alias holds its topic
// (up to 64 KiB) for the life of the connection, so the Topic Alias
// Maximum bounds a client's memory: at the old default of 65,535, 1,000
// PUBLISHes of 60 KB topics on new aliases held 60 MB, and 65,535 of them
// would hold 4 GB. At the default of 10 (Mosquitto's) reassigning the
// aliases keeps the heap flat, alias 11 ends the connection (DISCONNECT
// 0x94), and the server uses no more aliases towards a client than that
// either, whatever the client allows.
func TestHostile_TopicAliasMemory(t *testing.T) {
	o := testOptions()
	_, addr, checkBaseline := hostileBroker(t, o)
	if o.TopicAliasMax != 10 {
		t.Fatalf("default Topic Alias Maximum %d", o.TopicAliasMax)
	}
	base := heapInUse()
	c, ack := connectRaw(t, addr, &packet.Connect{ClientID: "aliases", CleanStart: true})
	if ack.Properties.TopicAliasMaximum != 10 {
		t.Fatalf("CONNACK Topic Alias Maximum %d", ack.Properties.TopicAliasMaximum)
	}
	long := strings.Repeat("t", 60_000)
	w := bufio.NewWriter(c.nc)
	for i := range 1000 {
		p := &packet.Publish{Topic: fmt.Sprintf("%s/%d", long, i), Payload: []byte("x")}
		p.Properties.TopicAlias = uint16(i%10 + 1)
		p.Properties.Present.Add(packet.PropTopicAlias)
		w.Write(packet.Append(nil, p, packet.V5))
	}
	w.Flush()
	c.ping()
	if h := heapInUse(); h > base+heapMargin {
		t.Fatalf("heap grew by %d MiB for 10 aliases", (h-base)>>20)
	}
	p := &packet.Publish{Topic: "eleven", Payload: []byte("x")}
	p.Properties.TopicAlias = 11
	p.Properties.Present.Add(packet.PropTopicAlias)
	c.send(p)
	c.expectDisconnect(packet.TopicAliasInvalid)

	cp := &packet.Connect{ClientID: "alias-sub", CleanStart: true}
	cp.Properties.TopicAliasMaximum = 65535
	cp.Properties.Present.Add(packet.PropTopicAliasMaximum)
	sub, _ := connectRaw(t, addr, cp)
	sub.subscribe(1, packet.Subscription{Filter: "out/#"})
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("alias-pub", true)
	for i := range 20 {
		pub.send(&packet.Publish{Topic: fmt.Sprintf("out/%d", i), Payload: []byte("x")})
	}
	for range 20 {
		if p := sub.recvPublish(); p.Properties.TopicAlias > 10 {
			t.Fatalf("server used topic alias %d towards a client, over its own maximum of 10", p.Properties.TopicAlias)
		}
	}
	sub.nc.Close()
	pub.nc.Close()
	checkBaseline()
}
