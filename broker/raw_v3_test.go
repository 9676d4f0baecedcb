package broker

import (
	"fmt"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// MQTT 3.1 and 3.1.1 behaviour, packet by packet with the raw client.

var v3Versions = []packet.Version{packet.V31, packet.V311}

// TestRawV311_SessionPresent follows a clean-session-0 session through
// reconnects: Session Present is 0 for a new session, 1 when resumed
// [MQTT-3.2.2-2], and 0 with clean session 1, which also ends the old
// session [MQTT-3.1.2-6, MQTT-3.2.2-1].
func TestRawV311_SessionPresent(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	connect := func(clean bool) (*rawClient, bool) {
		c := dialRaw(t, addr, packet.V311)
		return c, c.mustConnect("persist", clean).SessionPresent
	}

	c, present := connect(false)
	if present {
		t.Fatal("session present on first connect")
	}
	c.subscribe(1, packet.Subscription{Filter: "persist/t", QoS: 1})
	c.disconnect()

	c, present = connect(false)
	if !present {
		t.Fatal("session not present on resume")
	}
	// The subscription survived: a message published now arrives.
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("persist-pub", true)
	pub.publishAck(&packet.Publish{Topic: "persist/t", QoS: 1, PacketID: 1, Payload: []byte("one")})
	if p := c.recvPublishAck(); string(p.Payload) != "one" {
		t.Fatalf("got %+v", p)
	}
	c.disconnect()

	c, present = connect(true)
	if present {
		t.Fatal("session present with clean session 1")
	}
	c.disconnect()
	waitSessionGone(t, s, "persist")

	c, present = connect(false)
	if present {
		t.Fatal("session present after a clean session ended it")
	}
	pub.publishAck(&packet.Publish{Topic: "persist/t", QoS: 1, PacketID: 2, Payload: []byte("two")})
	c.expectNothing(100 * time.Millisecond) // the old subscription is gone
}

// TestRawV3_QueuedOnResume checks that QoS 1 and 2 messages published
// while a clean-session-0 client is away are delivered, in order, when it
// comes back; QoS 0 ones are not queued by default.
func TestRawV3_QueuedOnResume(t *testing.T) {
	t.Parallel()
	for _, v := range v3Versions {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			s, addr := newTestBroker(t, testOptions())
			sub := dialRaw(t, addr, v)
			sub.mustConnect("queued", false)
			sub.subscribe(1, packet.Subscription{Filter: "queue/#", QoS: 2})
			sub.disconnect()
			waitOffline(t, s, "queued")

			pub := dialRaw(t, addr, v)
			pub.mustConnect("queue-pub", true)
			for i, q := range []byte{1, 0, 2, 1} {
				pub.publishAck(&packet.Publish{Topic: fmt.Sprintf("queue/%d", i), QoS: q, PacketID: uint16(i + 1),
					Payload: fmt.Appendf(nil, "m%d", i)})
			}
			testkit.WaitFor(t, 5*time.Second, func() error {
				if n := s.sessions.Get("queued").Stats().Queued; n != 3 {
					return fmt.Errorf("%d queued, want 3", n)
				}
				return nil
			})

			sub = dialRaw(t, addr, v)
			ack := sub.mustConnect("queued", false)
			if v == packet.V311 && !ack.SessionPresent {
				t.Fatal("session not present")
			}
			got := sub.recvPublishes(3)
			for i, want := range []struct {
				topic string
				qos   byte
			}{{"queue/0", 1}, {"queue/2", 2}, {"queue/3", 1}} {
				if p := got[i]; p.Topic != want.topic || p.QoS != want.qos || p.Dup || p.Retain {
					t.Fatalf("message %d: got %+v, want %s at QoS %d", i, p, want.topic, want.qos)
				}
			}
			sub.expectNothing(100 * time.Millisecond) // the QoS 0 message was not queued
		})
	}
}

// TestRawV3_InflightResendDup leaves a QoS 1 PUBLISH unacknowledged and a
// QoS 2 exchange at PUBREL, drops the connection, and checks that on
// resume the server sends the PUBLISH again with DUP set and the PUBREL
// again, with their original packet identifiers [MQTT-4.4.0-1,
// MQTT-3.3.1-1].
func TestRawV3_InflightResendDup(t *testing.T) {
	t.Parallel()
	for _, v := range v3Versions {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			s, addr := newTestBroker(t, testOptions())
			sub := dialRaw(t, addr, v)
			sub.mustConnect("inflight", false)
			sub.subscribe(1, packet.Subscription{Filter: "inflight/#", QoS: 2})

			pub := dialRaw(t, addr, v)
			pub.mustConnect("inflight-pub", true)
			pub.publishAck(&packet.Publish{Topic: "inflight/q1", QoS: 1, PacketID: 1, Payload: []byte("q1")})
			pub.publishAck(&packet.Publish{Topic: "inflight/q2", QoS: 2, PacketID: 2, Payload: []byte("q2")})

			p1 := sub.recvPublish()
			p2 := sub.recvPublish()
			if p1.Topic != "inflight/q1" || p1.QoS != 1 || p1.Dup || p2.Topic != "inflight/q2" || p2.QoS != 2 || p2.Dup {
				t.Fatalf("first deliveries: %+v, %+v", p1, p2)
			}
			sub.send(&packet.Pubrec{PacketID: p2.PacketID})
			if rel, ok := sub.recv().(*packet.Pubrel); !ok || rel.PacketID != p2.PacketID {
				t.Fatalf("want PUBREL %d, got %+v", p2.PacketID, rel)
			}
			sub.nc.Close() // no PUBACK, no PUBCOMP, no DISCONNECT
			waitOffline(t, s, "inflight")

			sub = dialRaw(t, addr, v)
			sub.mustConnect("inflight", false)
			again := sub.recvPublish()
			if again.Topic != "inflight/q1" || !again.Dup || again.QoS != 1 || again.PacketID != p1.PacketID ||
				string(again.Payload) != "q1" {
				t.Fatalf("resent PUBLISH %+v, want DUP copy of %+v", again, p1)
			}
			if rel, ok := sub.recv().(*packet.Pubrel); !ok || rel.PacketID != p2.PacketID {
				t.Fatalf("want PUBREL %d resent, got %+v", p2.PacketID, rel)
			}
			sub.send(&packet.Puback{PacketID: p1.PacketID})
			sub.send(&packet.Pubcomp{PacketID: p2.PacketID})
			testkit.WaitFor(t, 5*time.Second, func() error {
				if n := s.sessions.Get("inflight").Stats().Inflight; n != 0 {
					return fmt.Errorf("%d in flight", n)
				}
				return nil
			})
			sub.disconnect()

			// Completed exchanges are not sent a third time.
			sub = dialRaw(t, addr, v)
			sub.mustConnect("inflight", false)
			sub.expectNothing(100 * time.Millisecond)
		})
	}
}

// TestRawV3_EmptyClientID: 3.1 needs a client identifier (return code 2);
// 3.1.1 allows an empty one with clean session 1, each such client getting
// its own session, and refuses it with clean session 0 [MQTT-3.1.3-7,
// MQTT-3.1.3-8].
func TestRawV3_EmptyClientID(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	tests := []struct {
		name  string
		v     packet.Version
		clean bool
		ok    bool
	}{
		{"3.1 clean", packet.V31, true, false},
		{"3.1 persistent", packet.V31, false, false},
		{"3.1.1 clean", packet.V311, true, true},
		{"3.1.1 persistent", packet.V311, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, tc.v)
			c.send(&packet.Connect{Version: tc.v, ProtocolName: protoName(tc.v), CleanStart: tc.clean, KeepAlive: 30})
			if !tc.ok {
				c.expectConnackClose(packet.ClientIdentifierNotValid)
				return
			}
			if ack, ok := c.recv().(*packet.Connack); !ok || ack.Reason != packet.Success || ack.SessionPresent {
				t.Fatalf("got %+v, want CONNACK success without session present", ack)
			}
			// A second anonymous client does not take the first one over.
			c2 := dialRaw(t, addr, tc.v)
			c2.send(&packet.Connect{Version: tc.v, ProtocolName: protoName(tc.v), CleanStart: true, KeepAlive: 30})
			if ack, ok := c2.recv().(*packet.Connack); !ok || ack.Reason != packet.Success {
				t.Fatalf("second anonymous client: %+v", ack)
			}
			c.ping()
			c2.ping()
		})
	}
}

func protoName(v packet.Version) string {
	if v == packet.V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// TestRawV3_UnsupportedProtocolLevel: a level the server does not speak
// gets CONNACK return code 1 and the connection is closed
// [MQTT-3.1.2-2]. A name that does not go with its level is refused too.
func TestRawV3_UnsupportedProtocolLevel(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	tests := []struct {
		name  string
		proto string
		level packet.Version
	}{
		{"level 2", "MQTT", 2},
		{"level 6", "MQTT", 6},
		{"level 128", "MQTT", 0x80},
		{"MQIsdp at level 4", "MQIsdp", packet.V311},
		{"MQTT at level 3", "MQTT", packet.V31},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, packet.V311)
			c.send(&packet.Connect{ProtocolName: tc.proto, Version: tc.level, ClientID: "level", CleanStart: true})
			c.expectConnackClose(packet.UnsupportedProtocolVersion)
		})
	}
	checkServing(t, addr)
}

// TestRawV3_FirstPacketNotConnect: anything before CONNECT closes the
// connection without a CONNACK [MQTT-3.1.0-1].
func TestRawV3_FirstPacketNotConnect(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	first := []packet.Packet{
		&packet.Pingreq{},
		&packet.Publish{Topic: "a", Payload: []byte("x")},
		&packet.Publish{Topic: "a", QoS: 1, PacketID: 1, Payload: []byte("x")},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#"}}},
		&packet.Disconnect{},
		&packet.Connack{},
		&packet.Puback{PacketID: 1},
	}
	for _, v := range v3Versions {
		for _, pk := range first {
			t.Run(v.String()+" "+pk.Type().String(), func(t *testing.T) {
				t.Parallel()
				c := dialRaw(t, addr, v)
				c.send(pk)
				c.expectNoPacketClose()
			})
		}
	}
}

// TestRawV3_SecondConnect: a second CONNECT is a protocol violation; the
// server closes the connection [MQTT-3.1.0-2] and, as for any protocol
// error, publishes the will [MQTT-3.1.2-8].
func TestRawV3_SecondConnect(t *testing.T) {
	t.Parallel()
	for _, v := range v3Versions {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			_, addr := newTestBroker(t, testOptions())
			watch := dialRaw(t, addr, v)
			watch.mustConnect("watch", true)
			watch.subscribe(1, packet.Subscription{Filter: "will/#"})

			c := dialRaw(t, addr, v)
			ack := c.connect(&packet.Connect{ClientID: "twice", CleanStart: true, KeepAlive: 30,
				WillFlag: true, WillTopic: "will/twice", WillPayload: []byte("bye")})
			if ack.Reason != packet.Success {
				t.Fatal(ack.Reason)
			}
			c.send(&packet.Connect{Version: v, ProtocolName: protoName(v), ClientID: "twice", CleanStart: true})
			c.expectNoPacketClose()
			if p := watch.recvPublish(); p.Topic != "will/twice" || string(p.Payload) != "bye" {
				t.Fatalf("watcher got %+v, want the will", p)
			}
		})
	}
}

// TestRawV3_Takeover: a second connection with the same client identifier
// takes the session; the old connection is closed [MQTT-3.1.4-2] and the
// new one gets the session's messages.
func TestRawV3_Takeover(t *testing.T) {
	t.Parallel()
	for _, v := range v3Versions {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			_, addr := newTestBroker(t, testOptions())
			old := dialRaw(t, addr, v)
			old.mustConnect("owner", false)
			old.subscribe(1, packet.Subscription{Filter: "take/over", QoS: 1})

			c := dialRaw(t, addr, v)
			ack := c.mustConnect("owner", false)
			if v == packet.V311 && !ack.SessionPresent {
				t.Fatal("session not present for the new connection")
			}
			old.expectNoPacketClose() // 3.x has no DISCONNECT from the server

			pub := dialRaw(t, addr, v)
			pub.mustConnect("take-pub", true)
			pub.publishAck(&packet.Publish{Topic: "take/over", QoS: 1, PacketID: 1, Payload: []byte("new owner")})
			if p := c.recvPublishAck(); string(p.Payload) != "new owner" {
				t.Fatalf("got %+v", p)
			}
			c.ping()
		})
	}
}

// TestRawV3_PublishSys: only the broker publishes under $SYS. A 3.x client
// cannot be told no, so its PUBLISH is acknowledged as usual and dropped
// [MQTT-3.3.5-2]: no subscriber receives it and nothing is retained. The
// same holds for a will whose topic is under $SYS.
func TestRawV3_PublishSys(t *testing.T) {
	t.Parallel()
	for _, v := range v3Versions {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			s, addr := newTestBroker(t, testOptions())
			sub := dialRaw(t, addr, v)
			sub.mustConnect("sys-sub", true)
			// Not $SYS/#: the client events under $SYS/brokers/ are the
			// broker's own.
			sub.subscribe(1, packet.Subscription{Filter: "$SYS/broker/#", QoS: 2}, packet.Subscription{Filter: "marker", QoS: 2})

			pub := dialRaw(t, addr, v)
			pub.mustConnect("sys-pub", true)
			for q := byte(0); q <= 2; q++ {
				r := pub.publishAck(&packet.Publish{Topic: "$SYS/broker/version", QoS: q, PacketID: uint16(q + 1),
					Retain: true, Payload: []byte("spoofed")})
				if r != packet.Success {
					t.Fatalf("QoS %d: acknowledged with %v", q, r)
				}
			}
			// A will under $SYS is dropped too.
			w := dialRaw(t, addr, v)
			w.connect(&packet.Connect{ClientID: "sys-will", CleanStart: true, KeepAlive: 30,
				WillFlag: true, WillTopic: "$SYS/broker/uptime", WillRetain: true, WillPayload: []byte("spoofed")})
			w.nc.Close()
			waitSessionGone(t, s, "sys-will")

			pub.publishAck(&packet.Publish{Topic: "marker", QoS: 1, PacketID: 9, Payload: []byte("after")})
			if p := sub.recvPublishAck(); p.Topic != "marker" {
				t.Fatalf("subscriber got %+v before the marker", p)
			}
			if n := s.Stats().Retained; n != 0 {
				t.Fatalf("%d retained messages, want none", n)
			}
		})
	}
}

// TestRawV3_KeepAliveTimeout: a client silent for one and a half times
// its keepalive is disconnected [MQTT-3.1.2-24] and its will published.
func TestRawV3_KeepAliveTimeout(t *testing.T) {
	t.Parallel()
	for _, v := range v3Versions {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			_, addr := newTestBroker(t, testOptions())
			watch := dialRaw(t, addr, v)
			watch.mustConnect("ka-watch", true)
			watch.subscribe(1, packet.Subscription{Filter: "ka/will", QoS: 1})

			c := dialRaw(t, addr, v)
			start := time.Now()
			c.connect(&packet.Connect{ClientID: "ka", CleanStart: true, KeepAlive: 1,
				WillFlag: true, WillQoS: 1, WillTopic: "ka/will", WillPayload: []byte("timed out")})
			c.expectNoPacketClose()
			if d := time.Since(start); d < time.Second || d > 3*time.Second {
				t.Fatalf("closed after %v, want about 1.5s", d)
			}
			if p := watch.recvPublishAck(); string(p.Payload) != "timed out" {
				t.Fatalf("watcher got %+v", p)
			}
		})
	}
}
