package broker

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// TestMessageExpiry_Forwarded checks that the Message Expiry Interval is
// forwarded as what is left of it, and that a queued message that expired
// is not sent [MQTT-3.3.2-5, MQTT-3.3.2-6].
func TestMessageExpiry_Forwarded(t *testing.T) {
	t.Parallel()
	srv, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "mx-pub", CleanStart: true})

	t.Run("online", func(t *testing.T) {
		sub := connectV5(t, addr, &paho.Connect{ClientID: "mx-online", CleanStart: true})
		sub.subscribe("mx/online")
		pub.publish(&paho.Publish{Topic: "mx/online", QoS: 1, Payload: []byte("x"),
			Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(60)}})
		pub.publish(&paho.Publish{Topic: "mx/online", QoS: 1, Payload: []byte("y")})
		if p := sub.recv(); p.Properties.MessageExpiry == nil || *p.Properties.MessageExpiry < 59 || *p.Properties.MessageExpiry > 60 {
			t.Fatalf("message expiry %v, want 60", p.Properties.MessageExpiry)
		}
		if p := sub.recv(); p.Properties.MessageExpiry != nil {
			t.Fatalf("message expiry %d on a message without one", *p.Properties.MessageExpiry)
		}
	})
	t.Run("queued", func(t *testing.T) {
		sub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "mx-queued", CleanStart: true, Properties: withExpiry(60)})
		sub.subscribe(1, packet.Subscription{Filter: "mx/q/+", QoS: 1})
		sub.send(&packet.Disconnect{})
		sub.expectClosed()
		// Offline on the broker's side too: a message already in flight
		// when the connection went would be resent whatever its expiry,
		// as onward delivery had started [MQTT-3.3.2-5].
		testkit.WaitFor(t, 5*time.Second, func() error {
			if sess := srv.sessions.Get("mx-queued"); sess == nil || sess.Online() {
				return fmt.Errorf("session not offline yet")
			}
			return nil
		})
		for _, m := range []struct {
			topic  string
			expiry uint32
		}{{"mx/q/short", 1}, {"mx/q/long", 100}, {"mx/q/none", 0}} {
			p := &paho.Publish{Topic: m.topic, QoS: 1, Payload: []byte("x")}
			if m.expiry > 0 {
				p.Properties = &paho.PublishProperties{MessageExpiry: paho.Uint32(m.expiry)}
			}
			pub.publish(p)
		}
		published := time.Now()
		// Let the short one expire in the queue.
		time.Sleep(time.Until(published.Add(1200 * time.Millisecond)))
		sub, ack := connectRaw(t, addr, &packet.Connect{ClientID: "mx-queued", Properties: withExpiry(60)})
		if !ack.SessionPresent {
			t.Fatal("session not present")
		}
		p := sub.recvPublishAck()
		if p.Topic != "mx/q/long" || !p.Properties.Present.Has(packet.PropMessageExpiry) || p.Properties.MessageExpiry > 99 || p.Properties.MessageExpiry < 95 {
			t.Fatalf("got %q with expiry %d (present %v), want mx/q/long with 99 or a little less",
				p.Topic, p.Properties.MessageExpiry, p.Properties.Present.Has(packet.PropMessageExpiry))
		}
		p = sub.recvPublishAck()
		if p.Topic != "mx/q/none" || p.Properties.Present.Has(packet.PropMessageExpiry) {
			t.Fatalf("got %q with expiry %d, want mx/q/none without", p.Topic, p.Properties.MessageExpiry)
		}
		sub.expectNothing(100 * time.Millisecond)
	})
}

// TestTopicAlias_ClientToServer checks that a topic alias set by a PUBLISH
// with a topic stands for that topic in later PUBLISHes with an empty one,
// and can be mapped again [MQTT-3.3.2-12].
func TestTopicAlias_ClientToServer(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	sub := connectV5(t, addr, &paho.Connect{ClientID: "ta-sub", CleanStart: true})
	sub.subscribe("ta/+")
	pub := connectV5(t, addr, &paho.Connect{ClientID: "ta-pub", CleanStart: true})
	if m := pub.connack.Properties.TopicAliasMaximum; m == nil || *m == 0 {
		t.Fatalf("CONNACK Topic Alias Maximum %v, want > 0", m)
	}
	sends := []struct{ topic, want string }{
		{"ta/x", "ta/x"}, {"", "ta/x"}, {"ta/y", "ta/y"}, {"", "ta/y"},
	}
	for i, s := range sends {
		pub.publish(&paho.Publish{Topic: s.topic, QoS: 1, Payload: []byte{byte(i)},
			Properties: &paho.PublishProperties{TopicAlias: paho.Uint16(1)}})
	}
	for i, s := range sends {
		if p := sub.recv(); p.Topic != s.want || p.Payload[0] != byte(i) {
			t.Fatalf("message %d on %q, want %q", i, p.Topic, s.want)
		}
	}
}

// TestTopicAlias_Invalid checks the topic aliases a server refuses: above
// its Topic Alias Maximum (0x94) [MQTT-3.3.2-9], 0 (a property value out
// of range for the decoder, 0x82) [MQTT-3.3.2-8], and an empty topic with
// an alias not set on this connection (0x82).
func TestTopicAlias_Invalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		aliasMax uint16
		topic    string
		alias    uint16
		want     packet.Reason
	}{
		{"above maximum", 5, "t", 6, packet.TopicAliasInvalid},
		{"zero", 5, "t", 0, packet.ProtocolError},
		{"aliases disabled", 0, "t", 1, packet.TopicAliasInvalid},
		{"unknown alias", 5, "", 3, packet.ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := testOptions()
			o.TopicAliasMax = tc.aliasMax
			_, addr := newTestBroker(t, o)
			c, ack := connectRaw(t, addr, &packet.Connect{ClientID: "alias", CleanStart: true})
			if got := ack.Properties.TopicAliasMaximum; got != tc.aliasMax ||
				ack.Properties.Present.Has(packet.PropTopicAliasMaximum) != (tc.aliasMax > 0) {
				t.Fatalf("CONNACK Topic Alias Maximum %d, want %d", got, tc.aliasMax)
			}
			p := &packet.Publish{Topic: tc.topic, QoS: 1, PacketID: 1, Payload: []byte("x")}
			p.Properties.TopicAlias = tc.alias
			p.Properties.Present.Add(packet.PropTopicAlias)
			c.send(p)
			c.expectDisconnect(tc.want)
		})
	}
}

// TestTopicAlias_ServerToClient checks that the server uses topic aliases
// towards a client that allows them, within its Topic Alias Maximum, and
// not towards one that does not [MQTT-3.3.2-10, MQTT-3.3.2-11].
func TestTopicAlias_ServerToClient(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	topics := []string{"sa/x", "sa/x", "sa/y", "sa/z", "sa/y", "sa/x", "sa/z"}
	for _, max := range []uint16{0, 2} {
		t.Run(fmt.Sprint("maximum ", max), func(t *testing.T) {
			t.Parallel()
			cp := &packet.Connect{ClientID: fmt.Sprint("sa-", max), CleanStart: true}
			if max > 0 {
				cp.Properties.TopicAliasMaximum = max
				cp.Properties.Present.Add(packet.PropTopicAliasMaximum)
			}
			sub, _ := connectRaw(t, addr, cp)
			sub.subscribe(1, packet.Subscription{Filter: fmt.Sprintf("sa/%d/+", max), QoS: 1})
			pub := connectV5(t, addr, &paho.Connect{ClientID: fmt.Sprint("sa-pub-", max), CleanStart: true})
			for _, topic := range topics {
				pub.publish(&paho.Publish{Topic: fmt.Sprintf("sa/%d/%s", max, topic[3:]), QoS: 1, Payload: []byte(topic)})
			}
			aliases := make(map[uint16]string) // the client's side of the mapping
			empty := 0
			for i := range topics {
				p := sub.recvPublishAck()
				topic := p.Topic
				if p.Properties.Present.Has(packet.PropTopicAlias) {
					a := p.Properties.TopicAlias
					if a == 0 || a > max {
						t.Fatalf("message %d: topic alias %d, maximum %d", i, a, max)
					}
					if topic != "" {
						aliases[a] = topic
					} else if topic = aliases[a]; topic == "" {
						t.Fatalf("message %d: empty topic with unset alias %d", i, a)
					}
				}
				if topic == "" {
					t.Fatalf("message %d: empty topic without alias", i)
				}
				if p.Topic == "" {
					empty++
				}
				if want := fmt.Sprintf("sa/%d/%s", max, p.Payload[3:]); topic != want {
					t.Fatalf("message %d: topic %q, want %q", i, topic, want)
				}
			}
			if max == 0 && empty > 0 || max > 0 && empty == 0 {
				t.Fatalf("%d messages with an empty topic with Topic Alias Maximum %d", empty, max)
			}
		})
	}
}

// TestMaximumPacketSize_Client checks that a message larger than the
// client's Maximum Packet Size is not sent to it, without holding up the
// ones after it, while one of exactly that size is [MQTT-3.1.2-24,
// MQTT-3.1.2-25].
func TestMaximumPacketSize_Client(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	cp := &packet.Connect{ClientID: "mps", CleanStart: true}
	cp.Properties.MaximumPacketSize = 100
	cp.Properties.ReceiveMaximum = 1 // a discarded message must free its slot
	cp.Properties.Present.Add(packet.PropMaximumPacketSize)
	cp.Properties.Present.Add(packet.PropReceiveMaximum)
	sub, _ := connectRaw(t, addr, cp)
	sub.subscribe(1, packet.Subscription{Filter: "mps", QoS: 1})
	pub := connectV5(t, addr, &paho.Connect{ClientID: "mps-pub", CleanStart: true})
	// PUBLISH "mps" QoS 1 without properties: 10 bytes plus the payload.
	sizes := []int{10, 500, 90, 91, 5}
	for _, n := range sizes {
		pub.publish(&paho.Publish{Topic: "mps", QoS: 1, Payload: bytes.Repeat([]byte{'x'}, n)})
	}
	for _, want := range []int{10, 90, 5} {
		if p := sub.recvPublishAck(); len(p.Payload) != want {
			t.Fatalf("got a payload of %d bytes, want %d", len(p.Payload), want)
		}
	}
	sub.expectNothing(100 * time.Millisecond)
	if n := s.Stats().PublishTooLargeOut; n != 2 {
		t.Fatalf("%d messages counted too large, want 2", n)
	}
}

// TestConnack_ResponseInformation checks that Response Information is
// sent when, and only when, the client asks for it [MQTT-3.1.2-28].
func TestConnack_ResponseInformation(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	for _, ask := range []bool{false, true} {
		c := connectV5(t, addr, &paho.Connect{ClientID: fmt.Sprint("ri-", ask), CleanStart: true,
			Properties: &paho.ConnectProperties{RequestResponseInfo: ask}})
		if got := c.connack.Properties.ResponseInfo; (got != "") != ask {
			t.Fatalf("asked %v: Response Information %q", ask, got)
		}
	}
}

// TestPublish_PropertiesForwarded checks that the PUBLISH properties meant
// for the receiver reach it unchanged, User Properties in order with
// repeated keys [MQTT-3.3.2-15, MQTT-3.3.2-16, MQTT-3.3.2-17,
// MQTT-3.3.2-18, MQTT-3.3.2-20], and that the payload is checked against
// its Payload Format Indicator.
func TestPublish_PropertiesForwarded(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	sub := connectV5(t, addr, &paho.Connect{ClientID: "props-sub", CleanStart: true})
	sub.subscribe("props/+")
	pub := connectV5(t, addr, &paho.Connect{ClientID: "props-pub", CleanStart: true})
	user := paho.UserProperties{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}, {Key: "b", Value: "3"}, {Key: "", Value: ""}}
	pub.publish(&paho.Publish{Topic: "props/all", QoS: 1, Payload: []byte("héllo"), Properties: &paho.PublishProperties{
		PayloadFormat:   paho.Byte(1),
		ContentType:     "text/plain; charset=utf-8",
		ResponseTopic:   "props/reply",
		CorrelationData: []byte{0, 0xff, 7},
		User:            user,
	}})
	pub.publish(&paho.Publish{Topic: "props/none", QoS: 1, Payload: []byte{0xff}})
	p := sub.recv()
	pp := p.Properties
	if pp.PayloadFormat == nil || *pp.PayloadFormat != 1 || pp.ContentType != "text/plain; charset=utf-8" ||
		pp.ResponseTopic != "props/reply" || !bytes.Equal(pp.CorrelationData, []byte{0, 0xff, 7}) ||
		!slices.Equal(pp.User, user) || string(p.Payload) != "héllo" {
		t.Fatalf("forwarded %+v payload %q", pp, p.Payload)
	}
	p = sub.recv()
	pp = p.Properties
	if pp.PayloadFormat != nil || pp.ContentType != "" || pp.ResponseTopic != "" || pp.CorrelationData != nil || len(pp.User) != 0 {
		t.Fatalf("properties %+v on a message published without", pp)
	}

	// A payload that is not UTF-8 although it says so is refused.
	r, _ := pub.Publish(t.Context(), &paho.Publish{Topic: "props/bad", QoS: 1, Payload: []byte{0xff, 0xfe},
		Properties: &paho.PublishProperties{PayloadFormat: paho.Byte(1)}})
	if r == nil || r.ReasonCode != byte(packet.PayloadFormatInvalid) {
		t.Fatalf("PUBACK %+v, want 0x99", r)
	}
	sub.expectNothing(100 * time.Millisecond)
}

// TestConnack_ServerKeepAlive checks that a client asking for a keepalive
// above the server's maximum, or for none, is told the server's in
// CONNACK, and one within it is not [MQTT-3.2.2-21].
func TestConnack_ServerKeepAlive(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxKeepAlive = 30
	_, addr := newTestBroker(t, o)
	cases := []struct {
		ask  uint16
		want uint16 // 0: no Server Keep Alive
	}{{60, 30}, {0, 30}, {30, 0}, {10, 0}}
	for _, tc := range cases {
		c := dialRaw(t, addr, packet.V5)
		ack := c.connect(&packet.Connect{ClientID: fmt.Sprint("ka-", tc.ask), CleanStart: true, KeepAlive: tc.ask})
		if ack.Reason != packet.Success {
			t.Fatalf("keepalive %d: CONNACK %v", tc.ask, ack.Reason)
		}
		has := ack.Properties.Present.Has(packet.PropServerKeepAlive)
		if has != (tc.want > 0) || ack.Properties.ServerKeepAlive != tc.want {
			t.Fatalf("keepalive %d: Server Keep Alive %d (present %v), want %d", tc.ask, ack.Properties.ServerKeepAlive, has, tc.want)
		}
	}
}

// TestConnect_AuthMethod checks that a CONNECT with an Authentication
// Method the server does not support is refused with 0x8C and closed
// [MQTT-4.12.0-1].
func TestConnect_AuthMethod(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	c, err := tryConnectV5(t, addr, &paho.Connect{ClientID: "auth", CleanStart: true,
		Properties: &paho.ConnectProperties{AuthMethod: "SCRAM-SHA-256", AuthData: []byte("client-first")}})
	if err == nil {
		t.Fatal("connect with an unsupported authentication method accepted")
	}
	if c.connack == nil || c.connack.ReasonCode != byte(packet.BadAuthenticationMethod) {
		t.Fatalf("CONNACK %+v, want 0x8C", c.connack)
	}

	// Without a method there is no exchange for an AUTH to continue.
	r, _ := connectRaw(t, addr, &packet.Connect{ClientID: "auth-later", CleanStart: true})
	a := &packet.Auth{Reason: packet.ReAuthenticate}
	a.Properties.AuthMethod = "SCRAM-SHA-256"
	a.Properties.Present.Add(packet.PropAuthMethod)
	r.send(a)
	r.expectDisconnect(packet.ProtocolError)
}

// TestPublish_NoMatchingSubscribers checks the PUBACK and PUBREC reason
// 0x10 for a message nobody is subscribed to, and 0x00 otherwise.
func TestPublish_NoMatchingSubscribers(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	pub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "nms-pub", CleanStart: true})
	for qos := byte(1); qos <= 2; qos++ {
		p := &packet.Publish{Topic: "nms/t", QoS: qos, PacketID: uint16(qos), Payload: []byte("x")}
		if r := pub.publishAck(p); r != packet.NoMatchingSubscribers {
			t.Fatalf("QoS %d without subscribers: reason %v, want 0x10", qos, r)
		}
	}
	sub := connectV5(t, addr, &paho.Connect{ClientID: "nms-sub", CleanStart: true})
	sub.subscribe("nms/#")
	for qos := byte(1); qos <= 2; qos++ {
		p := &packet.Publish{Topic: "nms/t", QoS: qos, PacketID: uint16(qos), Payload: []byte("x")}
		if r := pub.publishAck(p); r != packet.Success {
			t.Fatalf("QoS %d with a subscriber: reason %v, want success", qos, r)
		}
	}
}

// TestMaximumPacketSize_Server checks that the server announces its
// Maximum Packet Size and disconnects a client sending a larger packet
// with 0x95 [MQTT-3.2.2-15].
func TestMaximumPacketSize_Server(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxPacketSize = 1024
	_, addr := newTestBroker(t, o)
	c, ack := connectRaw(t, addr, &packet.Connect{ClientID: "big", CleanStart: true})
	if !ack.Properties.Present.Has(packet.PropMaximumPacketSize) || ack.Properties.MaximumPacketSize != 1024 {
		t.Fatalf("CONNACK Maximum Packet Size %d, want 1024", ack.Properties.MaximumPacketSize)
	}
	// "t" QoS 0 without properties: 7 bytes (a 2-byte remaining length)
	// plus the payload.
	if r := c.publishAck(&packet.Publish{Topic: "t", Payload: make([]byte, 1024-7)}); r != packet.Success {
		t.Fatalf("publish of 1024 bytes: %v", r)
	}
	c.ping()
	c.send(&packet.Publish{Topic: "t", Payload: make([]byte, 1024-6)})
	c.expectDisconnect(packet.PacketTooLarge)
}
