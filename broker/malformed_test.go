package broker

import (
	"fmt"
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

// Hostile input: raw bytes over TCP. A v5 client gets the DISCONNECT (or,
// for CONNECT, the CONNACK) reason the specification asks for; a 3.x
// client, which has no such packet, is just disconnected. The broker must
// go on serving everyone else.

// Byte builders for hand-made packets.

// raw builds a packet from its first byte and body parts, computing the
// Remaining Length.
func raw(first byte, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	return append(append([]byte{first}, vbi(len(body))...), body...)
}

// vbi encodes n as a Variable Byte Integer.
func vbi(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// str encodes a length-prefixed string or binary field.
func str(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func u16(n uint16) []byte { return []byte{byte(n >> 8), byte(n)} }

// props encodes a v5 property block: its length, then the properties.
func props(ps ...[]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = append(b, p...)
	}
	return append(vbi(len(b)), b...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var noProps = []byte{0}

// malformedCase is one hostile packet sent after a successful CONNECT.
type malformedCase struct {
	name string
	raw  []byte
	want []packet.Reason // v5: accepted DISCONNECT reasons; 3.x: nil, a plain close
}

// malformedAfterConnect returns the cases for version v. The bytes differ
// between 3.1.1 and 5.0 where v5 adds properties.
func malformedAfterConnect(v packet.Version) []malformedCase {
	v5 := v == packet.V5
	p := func(ps ...[]byte) []byte { // property block, v5 only
		if !v5 {
			return nil
		}
		return props(ps...)
	}
	mal := []packet.Reason{packet.MalformedPacket}
	proto := []packet.Reason{packet.ProtocolError}
	cases := []malformedCase{
		// Reserved flag bits [MQTT-2.2.2-1 in 3.1.1, MQTT-2.1.3-1 in 5.0].
		{"PUBACK flags 0001", raw(0x41, u16(1)), mal},
		{"PINGREQ flags 0001", raw(0xC1), mal},
		{"DISCONNECT flags 1000", raw(0xE8), mal},
		{"SUBSCRIBE flags 0000", raw(0x80, u16(1), p(), str("a"), []byte{0}), mal},
		{"UNSUBSCRIBE flags 0000", raw(0xA0, u16(1), p(), str("a")), mal},
		{"PUBREL flags 0000", raw(0x60, u16(1)), mal},
		{"packet type 0", raw(0x00), mal},
		{"CONNACK from a client", raw(0x20, []byte{0, 0}, p()), append(mal, packet.ProtocolError)},

		// Remaining Length [MQTT-1.5.5-1 in 5.0, 2.2.3 in 3.1.1].
		{"remaining length of five bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, mal},
		{"remaining length not minimal", []byte{0xC0, 0x80, 0x00}, mal},
		{"PINGREQ with a body", raw(0xC0, []byte{0}), mal},

		// Truncated: fields that run past the Remaining Length.
		{"topic length past the end", raw(0x30, []byte{0, 9, 'a'}), mal},
		{"QoS 1 without packet identifier", raw(0x32, str("a")), mal},
		{"PUBACK of one byte", raw(0x40, []byte{0}), mal},
		{"SUBSCRIBE without options byte", raw(0x82, u16(1), p(), str("a")), mal},

		// Topic names [MQTT-1.5.3-1, MQTT-1.5.3-2, MQTT-3.3.2-2, MQTT-4.7.3-1].
		{"topic invalid UTF-8", raw(0x30, str("a\xc3\x28"), p(), []byte("x")), mal},
		{"topic with U+0000", raw(0x30, str("a\x00b"), p(), []byte("x")), mal},
		{"topic with a surrogate", raw(0x30, str("a\xed\xa0\x80"), p(), []byte("x")), mal},
		{"topic with +", raw(0x30, str("a/+"), p(), []byte("x")), []packet.Reason{packet.TopicNameInvalid}},
		{"topic with #", raw(0x32, str("a/#"), u16(1), p(), []byte("x")), []packet.Reason{packet.TopicNameInvalid}},

		// PUBLISH header fields [MQTT-3.3.1-2, MQTT-3.3.1-4, MQTT-2.3.1-1].
		{"QoS 3", raw(0x36, str("a"), u16(1), p(), []byte("x")), mal},
		{"DUP with QoS 0", raw(0x38, str("a"), p(), []byte("x")), mal},
		{"QoS 1 packet identifier 0", raw(0x32, str("a"), u16(0), p(), []byte("x")), append(mal, packet.ProtocolError)},
		{"QoS 2 packet identifier 0", raw(0x34, str("a"), u16(0), p(), []byte("x")), append(mal, packet.ProtocolError)},

		// SUBSCRIBE and UNSUBSCRIBE [MQTT-3.8.3-3, MQTT-3.10.3-2 in 3.1.1].
		{"SUBSCRIBE with no filters", raw(0x82, u16(1), p()), proto},
		{"UNSUBSCRIBE with no filters", raw(0xA2, u16(1), p()), proto},
		{"SUBSCRIBE packet identifier 0", raw(0x82, u16(0), p(), str("a"), []byte{0}), append(mal, packet.ProtocolError)},
		{"SUBSCRIBE filter invalid UTF-8", raw(0x82, u16(1), p(), str("\xff"), []byte{0}), mal},
	}
	if !v5 {
		return append(cases,
			malformedCase{"empty topic", raw(0x30, str(""), []byte("x")), nil},
			malformedCase{"AUTH in 3.1.1", raw(0xF0), nil},
			malformedCase{"SUBSCRIBE reserved option bits", raw(0x82, u16(1), str("a"), []byte{0x04}), nil},
			malformedCase{"SUBSCRIBE QoS 3", raw(0x82, u16(1), str("a"), []byte{0x03}), nil},
			malformedCase{"DISCONNECT with a body", raw(0xE0, []byte{0}), nil},
		)
	}
	prop := func(id byte, v ...byte) []byte { return append([]byte{id}, v...) }
	const (
		pPayloadFormat = 0x01
		pMessageExpiry = 0x02
		pResponseTopic = 0x08
		pSubID         = 0x0B
		pSessionExpiry = 0x11
		pTopicAlias    = 0x23
		pUser          = 0x26
		pReasonString  = 0x1F
	)
	return append(cases, []malformedCase{
		// [MQTT-3.3.2-8]: a Topic Alias of 0 is not permitted; the
		// codec calls it a Protocol Error, Mosquitto Topic Alias invalid.
		{"topic alias 0", raw(0x30, str("a"), props(prop(pTopicAlias, 0, 0)), []byte("x")),
			[]packet.Reason{packet.ProtocolError, packet.TopicAliasInvalid}},
		// [MQTT-3.3.2-9]: over the Topic Alias Maximum of the CONNACK (10 here).
		{"topic alias over maximum", raw(0x30, str("a"), props(prop(pTopicAlias, 0, 11)), []byte("x")),
			[]packet.Reason{packet.TopicAliasInvalid}},
		{"empty topic without alias", raw(0x30, str(""), props(), []byte("x")), proto},
		{"empty topic with unknown alias", raw(0x30, str(""), props(prop(pTopicAlias, 0, 5)), []byte("x")),
			[]packet.Reason{packet.ProtocolError, packet.TopicAliasInvalid}},
		// v5 2.2.2.2: a property twice is a Protocol Error, one the
		// packet cannot carry is Malformed.
		{"duplicate payload format", raw(0x30, str("a"), props(prop(pPayloadFormat, 1), prop(pPayloadFormat, 1)), []byte("x")), proto},
		{"duplicate message expiry", raw(0x30, str("a"), props(prop(pMessageExpiry, 0, 0, 0, 9), prop(pMessageExpiry, 0, 0, 0, 9)), []byte("x")), proto},
		{"duplicate reason string in PUBACK", raw(0x40, u16(7), []byte{0}, props(prop(pReasonString, str("x")...), prop(pReasonString, str("y")...))), proto},
		{"session expiry in PUBLISH", raw(0x30, str("a"), props(prop(pSessionExpiry, 0, 0, 0, 1)), []byte("x")), mal},
		{"topic alias in SUBSCRIBE", raw(0x82, u16(1), props(prop(pTopicAlias, 0, 1)), str("a"), []byte{0}), mal},
		{"unknown property 0x7F", raw(0x30, str("a"), props(prop(0x7F, 0)), []byte("x")), mal},
		{"property length past the end", raw(0x30, str("a"), []byte{9, pPayloadFormat, 1}), mal},
		{"property value cut short", raw(0x30, str("a"), props(prop(pMessageExpiry, 0, 0))), mal},
		{"payload format 2", raw(0x30, str("a"), props(prop(pPayloadFormat, 2)), []byte("x")), proto},
		{"user property invalid UTF-8", raw(0x30, str("a"), props(prop(pUser, cat(str("k"), str("\xc3\x28"))...)), []byte("x")), mal},
		{"response topic with wildcard", raw(0x30, str("a"), props(prop(pResponseTopic, str("r/#")...)), []byte("x")),
			[]packet.Reason{packet.TopicNameInvalid, packet.ProtocolError}},
		// [MQTT-3.3.4-6]: a client's PUBLISH carries no Subscription Identifier.
		{"subscription identifier from a client", raw(0x30, str("a"), props(prop(pSubID, 1)), []byte("x")), proto},
		{"subscription identifier 0 in SUBSCRIBE", raw(0x82, u16(1), props(prop(pSubID, 0)), str("a"), []byte{0}), proto},
		{"SUBSCRIBE reserved option bits", raw(0x82, u16(1), props(), str("a"), []byte{0xC0}), mal},
		{"SUBSCRIBE QoS 3", raw(0x82, u16(1), props(), str("a"), []byte{0x03}), proto},
		{"SUBSCRIBE retain handling 3", raw(0x82, u16(1), props(), str("a"), []byte{0x30}), proto},
		{"no local on shared subscription", raw(0x82, u16(1), props(), str("$share/g/a"), []byte{0x04}), proto},
		{"PUBACK reason 0x05", raw(0x40, u16(1), []byte{0x05}), mal},
		{"DISCONNECT reason 0x03", raw(0xE0, []byte{0x03}), mal},
		// [MQTT-3.14.2-2]: expiry 0 at CONNECT cannot be raised at DISCONNECT.
		{"DISCONNECT raises session expiry", raw(0xE0, []byte{0x00}, props(prop(pSessionExpiry, 0, 0, 0, 9))), proto},
		{"AUTH without a method", raw(0xF0), proto},
	}...)
}

// TestMalformed_AfterConnect sends each hostile packet on its own
// connection after a good CONNECT and checks the answer; a bystander
// connected throughout must still receive messages afterwards.
func TestMalformed_AfterConnect(t *testing.T) {
	t.Parallel()
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			o := testOptions()
			o.TopicAliasMax = 10
			_, addr := newTestBroker(t, o)
			bystander := dialRaw(t, addr, v)
			bystander.mustConnect("bystander", true)
			bystander.subscribe(1, packet.Subscription{Filter: "after/#", QoS: 1})

			t.Run("cases", func(t *testing.T) {
				for i, tc := range malformedAfterConnect(v) {
					t.Run(tc.name, func(t *testing.T) {
						t.Parallel()
						c := dialRaw(t, addr, v)
						c.mustConnect(fmt.Sprintf("hostile-%d", i), true)
						c.sendRaw(tc.raw)
						if v == packet.V5 {
							c.expectDisconnectIn(tc.want...)
						} else {
							c.expectNoPacketClose()
						}
					})
				}
			})

			pub := dialRaw(t, addr, v)
			pub.mustConnect("after-pub", true)
			pub.publishAck(&packet.Publish{Topic: "after/all", QoS: 1, PacketID: 1, Payload: []byte("still here")})
			if p := bystander.recvPublishAck(); string(p.Payload) != "still here" {
				t.Fatalf("bystander got %+v", p)
			}
			checkServing(t, addr)
		})
	}
}

// connectCase is a hostile CONNECT.
type connectCase struct {
	name string
	v    packet.Version
	raw  []byte
	// want is the CONNACK reason expected before the close; 0 means a
	// plain close without CONNACK.
	want packet.Reason
}

// connectBody builds a CONNECT: protocol name and level, flags,
// keepalive, v5 properties (nil for 3.x), then the payload.
func connectPacket(name string, level, flags byte, v5props []byte, payload ...[]byte) []byte {
	return raw(0x10, str(name), []byte{level, flags}, u16(30), v5props, cat(payload...))
}

func malformedConnects() []connectCase {
	prop := func(id byte, v ...byte) []byte { return append([]byte{id}, v...) }
	const (
		cleanStart = 0x02
		willFlag   = 0x04
		willQoS3   = 0x18
		willRetain = 0x20
		password   = 0x40
		reserved   = 0x01
	)
	c3 := func(flags byte, payload ...[]byte) []byte {
		return connectPacket("MQTT", 4, flags, nil, payload...)
	}
	c5 := func(flags byte, pr []byte, payload ...[]byte) []byte {
		return connectPacket("MQTT", 5, flags, pr, payload...)
	}
	return []connectCase{
		// [MQTT-3.1.2-3]: the reserved flag must be 0.
		{"reserved flag", packet.V311, c3(cleanStart|reserved, str("id")), 0},
		{"reserved flag", packet.V5, c5(cleanStart|reserved, noProps, str("id")), packet.MalformedPacket},
		// [MQTT-3.1.2-14] (v5 -12): will QoS 3.
		{"will QoS 3", packet.V311, c3(cleanStart|willFlag|willQoS3, str("id"), str("w"), str("x")), 0},
		{"will QoS 3", packet.V5, c5(cleanStart|willFlag|willQoS3, noProps, str("id"), noProps, str("w"), str("x")), packet.MalformedPacket},
		// [MQTT-3.1.2-15] (v5 -13): will retain without will.
		{"will retain without will", packet.V311, c3(cleanStart|willRetain, str("id")), 0},
		{"will retain without will", packet.V5, c5(cleanStart|willRetain, noProps, str("id")), packet.MalformedPacket},
		// [MQTT-3.1.2-22]: a password needs a user name in 3.1.1.
		{"password without user name", packet.V311, c3(cleanStart|password, str("id"), str("pw")), 0},
		// [MQTT-1.5.3-1]: client identifier not UTF-8.
		{"client id invalid UTF-8", packet.V311, c3(cleanStart, str("\xff\xfe")), 0},
		{"client id invalid UTF-8", packet.V5, c5(cleanStart, noProps, str("\xff\xfe")), packet.MalformedPacket},
		// A will topic is a topic name: no wildcards [MQTT-3.1.3-10].
		{"will topic with wildcard", packet.V311, c3(cleanStart|willFlag, str("id"), str("w/#"), str("x")), 0},
		{"will topic with wildcard", packet.V5, c5(cleanStart|willFlag, noProps, str("id"), noProps, str("w/#"), str("x")), packet.TopicNameInvalid},
		{"bytes after the payload", packet.V311, c3(cleanStart, str("id"), []byte{0xAA}), 0},
		{"bytes after the payload", packet.V5, c5(cleanStart, noProps, str("id"), []byte{0xAA}), packet.MalformedPacket},
		{"client id past the end", packet.V311, c3(cleanStart, []byte{0, 9, 'i'}), 0},
		{"client id past the end", packet.V5, c5(cleanStart, noProps, []byte{0, 9, 'i'}), packet.MalformedPacket},
		// v5 properties.
		{"duplicate session expiry", packet.V5, c5(cleanStart, props(prop(0x11, 0, 0, 0, 1), prop(0x11, 0, 0, 0, 1)), str("id")), packet.ProtocolError},
		{"topic alias in CONNECT", packet.V5, c5(cleanStart, props(prop(0x23, 0, 1)), str("id")), packet.MalformedPacket},
		{"receive maximum 0", packet.V5, c5(cleanStart, props(prop(0x21, 0, 0)), str("id")), packet.ProtocolError},
		{"maximum packet size 0", packet.V5, c5(cleanStart, props(prop(0x27, 0, 0, 0, 0)), str("id")), packet.ProtocolError},
		{"request problem information 2", packet.V5, c5(cleanStart, props(prop(0x17, 2)), str("id")), packet.ProtocolError},
		{"authentication data without method", packet.V5, c5(cleanStart, props(prop(0x16, str("x")...)), str("id")), packet.ProtocolError},
		{"will property not allowed", packet.V5, c5(cleanStart|willFlag, noProps, str("id"), props(prop(0x11, 0, 0, 0, 1)), str("w"), str("x")), packet.MalformedPacket},
		{"properties past the end", packet.V5, c5(cleanStart, []byte{20, 0x11}, str("id")), packet.MalformedPacket},
		// The fixed header of CONNECT has flags 0000.
		{"CONNECT flags 0001", packet.V311, append([]byte{0x11}, c3(cleanStart, str("id"))[1:]...), 0},
		{"CONNECT flags 0001", packet.V5, append([]byte{0x11}, c5(cleanStart, noProps, str("id"))[1:]...), 0},
		{"protocol name invalid UTF-8", packet.V311, connectPacket("MQ\xffT", 4, cleanStart, nil, str("id")), 0},
	}
}

// TestMalformed_Connect sends each hostile CONNECT as the first packet.
func TestMalformed_Connect(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	t.Run("cases", func(t *testing.T) {
		for _, tc := range malformedConnects() {
			t.Run(tc.v.String()+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				c := dialRaw(t, addr, tc.v)
				c.sendRaw(tc.raw)
				if tc.want == 0 {
					c.expectNoPacketClose()
				} else {
					c.expectConnackClose(tc.want)
				}
			})
		}
	})
	checkServing(t, addr)
}

// TestMalformed_PacketTooLarge: a Remaining Length over MaxPacketSize is
// refused from the fixed header, before the body is read: v5 gets
// DISCONNECT 0x95 [MQTT-3.2.2-15 in reverse: the server's own limit],
// 3.1.1 a close. A packet of exactly the limit passes.
func TestMalformed_PacketTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 1024
	o := testOptions()
	o.MaxPacketSize = limit
	_, addr := newTestBroker(t, o)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, v)
			ack := c.mustConnect("big-"+v.String(), true)
			if v == packet.V5 && (!ack.Properties.Present.Has(packet.PropMaximumPacketSize) || ack.Properties.MaximumPacketSize != limit) {
				t.Fatalf("CONNACK does not announce Maximum Packet Size %d: %+v", limit, ack.Properties)
			}
			// Exactly the limit: 1 + 2 (remaining length) + body.
			head := cat(str("big"), u16(1))
			if v == packet.V5 {
				head = append(head, noProps...)
			}
			body := cat(head, make([]byte, limit-3-len(head)))
			if n := len(raw(0x32, body)); n != limit {
				t.Fatalf("test packet is %d bytes", n)
			}
			c.sendRaw(raw(0x32, body))
			if a, ok := c.recv().(*packet.Puback); !ok || a.PacketID != 1 {
				t.Fatalf("packet of exactly the limit: got %+v, want PUBACK", a)
			}
			// One byte more: refused from the header alone.
			c.sendRaw(raw(0x32, append(body, 0))[:10])
			if v == packet.V5 {
				c.expectDisconnect(packet.PacketTooLarge)
			} else {
				c.expectNoPacketClose()
			}
		})
	}
}

// TestMalformed_HugeRemainingLength announces a 100 MB packet and sends a
// few bytes of it: the broker must refuse it at once, not wait for (or
// allocate) the body. Also as the very first packet.
func TestMalformed_HugeRemainingLength(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions()) // MaxPacketSize 1 MiB
	huge := append([]byte{0x30}, vbi(100_000_000)...)
	huge = append(huge, str("big/topic")...)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String()+" PUBLISH", func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, v)
			c.mustConnect("huge-"+v.String(), true)
			start := time.Now()
			c.sendRaw(huge)
			if v == packet.V5 {
				c.expectDisconnect(packet.PacketTooLarge)
			} else {
				c.expectNoPacketClose()
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refused after %v, want at once", d)
			}
		})
		t.Run(v.String()+" CONNECT", func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, v)
			start := time.Now()
			c.sendRaw(cat([]byte{0x10}, vbi(100_000_000), str("MQTT"), []byte{byte(v)}))
			c.expectNoPacketClose()
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refused after %v, want at once", d)
			}
		})
	}
	checkServing(t, addr)
}

// TestMalformed_InvalidFilters: a filter with a misplaced wildcard is
// refused alone in the SUBACK (0x8F in v5, 0x80 in 3.1.1) and the
// connection stays up with its valid subscriptions [MQTT-4.7.1-2,
// MQTT-4.7.1-3, MQTT-4.8.2-1].
func TestMalformed_InvalidFilters(t *testing.T) {
	t.Parallel()
	filters := []struct {
		filter string
		ok     bool
	}{
		{"a/#/b", false},
		{"a+", false},
		{"a/b#", false},
		{"#/a", false},
		{"+a/b", false},
		{"$share/g", false},
		{"$share//a", false},
		{"$share/g+/a", false},
		{"ok/+/x/#", true},
		{"$share/grp/ok/#", true},
	}
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			s, addr := newTestBroker(t, testOptions())
			c := dialRaw(t, addr, v)
			c.mustConnect("filters", true)
			var subs []packet.Subscription
			for _, f := range filters {
				subs = append(subs, packet.Subscription{Filter: f.filter, QoS: 1})
			}
			ack := c.subscribe(1, subs...)
			if len(ack.Reasons) != len(filters) {
				t.Fatalf("SUBACK has %d reasons for %d filters", len(ack.Reasons), len(filters))
			}
			refused := packet.TopicFilterInvalid
			if v != packet.V5 {
				refused = 0x80
			}
			for i, f := range filters {
				want := packet.GrantedQoS1
				if !f.ok {
					want = refused
				}
				if ack.Reasons[i] != want {
					t.Errorf("filter %q: reason %#02x, want %#02x", f.filter, byte(ack.Reasons[i]), byte(want))
				}
			}
			if n := s.sessions.Get("filters").Stats().Subscriptions; n != 2 {
				t.Fatalf("%d subscriptions, want the 2 valid ones", n)
			}
			c.ping()
		})
	}
}

// TestMalformed_GoroutinesReturn sends a burst of broken connections of
// every kind and checks that the broker's goroutines all exit: the count
// returns to what it was before. It does not run in parallel with other
// tests, so that runtime.NumGoroutine counts only this broker.
func TestMalformed_GoroutinesReturn(t *testing.T) {
	o := testOptions()
	o.ConnectTimeout = 300 * time.Millisecond
	s, addr := newTestBroker(t, o)
	checkServing(t, addr) // warm up pools and the listener
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := s.Stats().ClientsConnected; n != 0 {
			return fmt.Errorf("%d warm-up clients still connected", n)
		}
		return nil
	})
	base := runtime.NumGoroutine()

	connected := func(v packet.Version, id string) net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return nil
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write(packet.Append(nil, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 1}, v))
		if _, err := packet.Read(nc, v, 0); err != nil { // CONNACK
			t.Errorf("connect %s: %v", id, err)
		}
		return nc
	}
	kinds := []func(i int){
		func(int) { // garbage instead of CONNECT
			if nc, err := net.Dial("tcp", addr); err == nil {
				nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
				nc.Close()
			}
		},
		func(int) { // half a CONNECT, then hang up
			if nc, err := net.Dial("tcp", addr); err == nil {
				nc.Write(connectPacket("MQTT", 4, 2, nil, str("half"))[:7])
				nc.Close()
			}
		},
		func(int) { // connect and say nothing until the connect timeout
			if nc, err := net.Dial("tcp", addr); err == nil {
				defer nc.Close()
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				nc.Read(make([]byte, 1)) // returns when the broker closes
			}
		},
		func(i int) { // malformed after CONNECT, v5
			if nc := connected(packet.V5, fmt.Sprintf("burst-a-%d", i)); nc != nil {
				nc.Write([]byte{0x36, 0x03, 0, 1, 'a'})
				nc.Read(make([]byte, 64))
				nc.Close()
			}
		},
		func(i int) { // malformed after CONNECT, 3.1.1
			if nc := connected(packet.V311, fmt.Sprintf("burst-b-%d", i)); nc != nil {
				nc.Write([]byte{0xC1, 0x00})
				nc.Read(make([]byte, 64))
				nc.Close()
			}
		},
		func(i int) { // a packet cut short, then hang up
			if nc := connected(packet.V311, fmt.Sprintf("burst-c-%d", i)); nc != nil {
				nc.Write(raw(0x30, str("t"), make([]byte, 200))[:50])
				nc.Close()
			}
		},
		func(i int) { // a packet cut short, then silence until keepalive
			if nc := connected(packet.V5, fmt.Sprintf("burst-d-%d", i)); nc != nil {
				nc.Write(raw(0x30, str("t"), noProps, make([]byte, 200))[:50])
				nc.Read(make([]byte, 64))
				nc.Close()
			}
		},
		func(i int) { // 100 MB announced
			if nc := connected(packet.V5, fmt.Sprintf("burst-e-%d", i)); nc != nil {
				nc.Write(append([]byte{0x30}, vbi(100_000_000)...))
				nc.Read(make([]byte, 64))
				nc.Close()
			}
		},
		func(i int) { // subscribed, then hang up mid-session
			if nc := connected(packet.V311, fmt.Sprintf("burst-f-%d", i)); nc != nil {
				nc.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1,
					Subscriptions: []packet.Subscription{{Filter: "burst/#", QoS: 1}}}, packet.V311))
				nc.Close()
			}
		},
		func(i int) { // second CONNECT
			if nc := connected(packet.V5, fmt.Sprintf("burst-g-%d", i)); nc != nil {
				nc.Write(packet.Append(nil, &packet.Connect{ClientID: "again", CleanStart: true}, packet.V5))
				nc.Read(make([]byte, 64))
				nc.Close()
			}
		},
	}
	var wg sync.WaitGroup
	var started atomic.Int32
	for round := range 6 {
		for k, kind := range kinds {
			wg.Go(func() {
				started.Add(1)
				kind(round*len(kinds) + k)
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		if n := s.Stats().ClientsConnected; n != 0 {
			return fmt.Errorf("%d clients still connected", n)
		}
		if n := runtime.NumGoroutine(); n > base {
			return fmt.Errorf("%d goroutines, %d before %d broken connections", n, base, started.Load())
		}
		return nil
	})
	t.Logf("%d goroutines after %d broken connections, %d before", runtime.NumGoroutine(), started.Load(), base)
	if n := s.sessions.Len(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	checkServing(t, addr)
}

// TestMalformed_TakeoverStorm connects many clients with one client
// identifier at once, in both versions: each takes the session from the
// one before [MQTT-3.1.4-2]. In the end one connection holds the only
// session and serves, the others are closed, and the broker works.
func TestMalformed_TakeoverStorm(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	const n = 40
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v := []packet.Version{packet.V31, packet.V311, packet.V5}[i%3]
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { nc.Close() })
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			cp := &packet.Connect{ClientID: "storm", CleanStart: i%2 == 0, KeepAlive: 30}
			if v == packet.V31 {
				cp.ProtocolName = "MQIsdp"
			}
			nc.Write(packet.Append(nil, cp, v))
			pk, err := packet.Read(nc, v, 0)
			if err != nil {
				return // taken over before its CONNACK was read: fine
			}
			if ack, ok := pk.(*packet.Connack); !ok || ack.Reason != packet.Success {
				t.Errorf("connection %d: %+v", i, pk)
				return
			}
			conns[i] = nc
		})
	}
	wg.Wait()
	// Exactly one connection is still open: the session's owner.
	var alive []int
	testkit.WaitFor(t, 10*time.Second, func() error {
		alive = alive[:0]
		for i, nc := range conns {
			if nc == nil {
				continue
			}
			nc.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := nc.Read(make([]byte, 64)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					alive = append(alive, i)
				}
			}
		}
		if len(alive) != 1 {
			return fmt.Errorf("connections %v still open, want one", alive)
		}
		return nil
	})
	if n := s.sessions.Len(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	if n := s.Stats().ClientsConnected; n != 1 {
		t.Fatalf("%d clients connected, want 1", n)
	}
	checkServing(t, addr)
}

// TestMalformed_DeepTopics publishes to a topic of 20000 levels through a
// filter of as many levels, all but the first "+", and through "#": deep
// trees must neither crash the broker nor lose or repeat the message.
// (The slow retained lookup of such a filter once let a message published
// after the SUBACK arrive twice: live and again as retained.) The topic
// level limit is raised for it: at the default of 128 such topics are
// refused (TestHostile_DeepTopic).
func TestMalformed_DeepTopics(t *testing.T) {
	t.Parallel()
	const depth = 20000
	o := testOptions()
	o.MaxTopicLevels = depth
	_, addr := newTestBroker(t, o)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			topic := v.String() + strings.Repeat("/a", depth-1)
			filter := v.String() + strings.Repeat("/+", depth-1)
			c := dialRaw(t, addr, v)
			c.mustConnect("deep-"+v.String(), true)
			ack := c.subscribe(1, packet.Subscription{Filter: filter, QoS: 1}, packet.Subscription{Filter: v.String() + "/#", QoS: 1})
			if ack.Reasons[0] != packet.GrantedQoS1 || ack.Reasons[1] != packet.GrantedQoS1 {
				t.Fatalf("SUBACK %v", ack.Reasons)
			}
			pub := dialRaw(t, addr, v)
			pub.mustConnect("deep-pub-"+v.String(), true)
			pub.publishAck(&packet.Publish{Topic: topic, QoS: 1, PacketID: 1, Retain: true, Payload: []byte("deep")})
			if p := c.recvPublishAck(); p.Topic != topic {
				t.Fatalf("got a topic of %d bytes", len(p.Topic))
			}
			c.expectNothing(100 * time.Millisecond) // once for both filters
		})
	}
	checkServing(t, addr)
}
