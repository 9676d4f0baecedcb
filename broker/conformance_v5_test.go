package broker

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// The MQTT 5.0-only checks of Paho's client_test5.py; see
// conformance_test.go and docs/conformance.md. The suite's waits of
// several seconds are shortened to one or two.

func connect5(t testing.TB, addr, id string, clean bool, props packet.Properties) (*rawClient, *packet.Connack) {
	t.Helper()
	return dialConnect(t, addr, packet.V5, &packet.Connect{ClientID: id, CleanStart: clean, Properties: props})
}

// test_session_expiry: Session Expiry Interval 0 ends the session with the
// connection; a positive one keeps it that long; DISCONNECT can change
// it, to 0 included.
func TestConformanceV5_SessionExpiry(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	reconnect := func(exp uint32) bool {
		c, ack := connect5(t, addr, aClient, false, withExpiry(exp))
		c.disconnect()
		return ack.SessionPresent
	}

	a, _ := connect5(t, addr, aClient, true, withExpiry(0))
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	a.disconnect()
	if reconnect(0) {
		t.Fatal("expiry 0: session outlived its connection")
	}

	a, _ = connect5(t, addr, aClient, true, withExpiry(1))
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	a.disconnect()
	if !reconnect(1) {
		t.Fatal("expiry 1: session gone at once")
	}
	waitSessionGone(t, s, aClient)
	if reconnect(1) {
		t.Fatal("expiry 1: session present after it expired")
	}

	// Expiry 1 at CONNECT, 3 at DISCONNECT [MQTT-3.14.2-2 allows raising
	// a non-zero one].
	a, _ = connect5(t, addr, aClient, true, withExpiry(1))
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	a.send(&packet.Disconnect{Properties: withExpiry(3)})
	a.expectClosed()
	time.Sleep(1500 * time.Millisecond) // outlive the CONNECT's interval
	a, ack := connect5(t, addr, aClient, false, withExpiry(1))
	if !ack.SessionPresent {
		t.Fatal("DISCONNECT's expiry 3 not applied")
	}
	a.send(&packet.Disconnect{Properties: withExpiry(0)})
	a.expectClosed()
	if reconnect(1) {
		t.Fatal("DISCONNECT's expiry 0 did not end the session")
	}
}

// test_user_properties: user properties reach the subscriber in order, at
// every QoS [MQTT-3.3.2-17, MQTT-3.3.2-18].
func TestConformanceV5_UserProperties(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	var pubs []*packet.Publish
	for q := byte(0); q <= 2; q++ {
		p := &packet.Publish{Topic: suiteTopics[0], QoS: q, PacketID: uint16(q + 1)}
		p.Properties.User = suiteProps
		pubs = append(pubs, p)
	}
	got := a.exchange(3, pubs...)
	for _, p := range got {
		if !sameUserProps(p.Properties.User, suiteProps) {
			t.Errorf("QoS %d: user properties %v", p.QoS, p.Properties.User)
		}
	}
	if qs := qosSet(got); !slices.Equal(qs, []byte{0, 1, 2}) {
		t.Fatalf("QoS received %v", qs)
	}
}

// test_payload_format: Payload Format Indicator and Content Type are
// forwarded unchanged [MQTT-3.3.2-4, MQTT-3.3.2-20].
func TestConformanceV5_PayloadFormat(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	var pubs []*packet.Publish
	for q := byte(0); q <= 2; q++ {
		p := &packet.Publish{Topic: suiteTopics[0], QoS: q, PacketID: uint16(q + 1)}
		p.Properties.PayloadFormat, p.Properties.ContentType = 1, "My name"
		p.Properties.Present.Add(packet.PropPayloadFormat)
		p.Properties.Present.Add(packet.PropContentType)
		pubs = append(pubs, p)
	}
	for _, p := range a.exchange(3, pubs...) {
		pr := p.Properties
		if !pr.Present.Has(packet.PropPayloadFormat) || pr.PayloadFormat != 1 || pr.ContentType != "My name" {
			t.Errorf("QoS %d: properties %+v", p.QoS, pr)
		}
	}
}

// test_publication_expiry: queued messages past their Message Expiry
// Interval are not delivered [MQTT-3.3.2-5]; the others arrive with the
// interval reduced by the time they waited [MQTT-3.3.2-6].
func TestConformanceV5_PublicationExpiry(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	b, _ := connect5(t, addr, bClient, true, withExpiry(99999))
	b.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	b.send(&packet.Disconnect{Properties: withExpiry(999999999)})
	b.expectClosed()
	waitOffline(t, s, bClient)

	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	var pubs []*packet.Publish
	for i, exp := range []uint32{1, 1, 6, 6} {
		p := &packet.Publish{Topic: suiteTopics[0], QoS: byte(i%2 + 1), PacketID: uint16(i + 1),
			Payload: fmt.Appendf(nil, "expiry %d", exp)}
		p.Properties.MessageExpiry = exp
		p.Properties.Present.Add(packet.PropMessageExpiry)
		pubs = append(pubs, p)
	}
	a.exchange(0, pubs...)
	time.Sleep(1200 * time.Millisecond) // let the 1 s messages expire in the queue

	b, _ = connect5(t, addr, bClient, false, withExpiry(99999))
	got := b.exchange(2)
	b.expectNothing(200 * time.Millisecond)
	for _, p := range got {
		if string(p.Payload) != "expiry 6" {
			t.Errorf("expired message delivered: %q", p.Payload)
		}
		if !p.Properties.Present.Has(packet.PropMessageExpiry) || p.Properties.MessageExpiry >= 6 {
			t.Errorf("Message Expiry Interval %d (present %v), want below 6",
				p.Properties.MessageExpiry, p.Properties.Present.Has(packet.PropMessageExpiry))
		}
	}
}

// test_subscribe_options: No Local, Retain As Published and the three
// Retain Handling values [MQTT-3.8.3-3, MQTT-3.3.1-12, MQTT-3.3.1-9..11].
func TestConformanceV5_SubscribeOptions(t *testing.T) {
	t.Parallel()
	t.Run("no local", func(t *testing.T) {
		t.Parallel()
		_, addr := newTestBroker(t, testOptions())
		a, _ := connect5(t, addr, aClient, true, packet.Properties{})
		b, _ := connect5(t, addr, bClient, true, packet.Properties{})
		a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2, NoLocal: true})
		b.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2, NoLocal: true})
		a.exchange(0, &packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: []byte("noLocal test")})
		b.exchange(1)
		a.expectNothing(200 * time.Millisecond)
	})
	t.Run("retain as published", func(t *testing.T) {
		t.Parallel()
		_, addr := newTestBroker(t, testOptions())
		a, _ := connect5(t, addr, aClient, true, packet.Properties{})
		a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2, RetainAsPublished: true})
		got := a.exchange(2,
			&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: []byte("retain as published false")},
			&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 3, Retain: true, Payload: []byte("retain as published true")})
		if got[0].Retain || !got[1].Retain {
			t.Fatalf("retain flags %v, %v; want false, true", got[0].Retain, got[1].Retain)
		}
	})
	t.Run("retain handling", func(t *testing.T) {
		t.Parallel()
		_, addr := newTestBroker(t, testOptions())
		a, _ := connect5(t, addr, aClient, true, packet.Properties{})
		a.exchange(0,
			&packet.Publish{Topic: suiteTopics[1], Retain: true, Payload: []byte("qos 0")},
			&packet.Publish{Topic: suiteTopics[2], QoS: 1, PacketID: 1, Retain: true, Payload: []byte("qos 1")},
			&packet.Publish{Topic: suiteTopics[3], QoS: 2, PacketID: 2, Retain: true, Payload: []byte("qos 2")})
		sub := func(c *rawClient, id uint16, rh byte, want int) {
			t.Helper()
			c.subscribe(id, packet.Subscription{Filter: suiteWild[5], QoS: 2, RetainHandling: rh})
			got := c.exchange(want)
			c.expectNothing(200 * time.Millisecond)
			if want > 0 && !slices.Equal(qosSet(got), []byte{0, 1, 2}) {
				t.Fatalf("retain handling %d: QoS received %v", rh, qosSet(got))
			}
		}
		sub(a, 10, 1, 3) // new subscription: sent
		sub(a, 11, 1, 0) // existing subscription: not sent
		a.disconnect()
		a, _ = connect5(t, addr, aClient, true, packet.Properties{})
		sub(a, 12, 2, 0) // never sent
		sub(a, 13, 2, 0)
		a.disconnect()
		a, _ = connect5(t, addr, aClient, true, packet.Properties{})
		sub(a, 14, 0, 3) // always sent
		sub(a, 15, 0, 3)
	})
}

// test_subscribe_identifiers: each delivery carries the Subscription
// Identifiers of every matching subscription of the receiver
// [MQTT-3.3.4-3, MQTT-3.3.4-4, MQTT-3.3.4-5].
func TestConformanceV5_SubscriptionIdentifiers(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	subWithID := func(c *rawClient, pid uint16, filter string, id uint32) {
		t.Helper()
		c.send(&packet.Subscribe{PacketID: pid, Properties: packet.Properties{SubscriptionIDs: []uint32{id}},
			Subscriptions: []packet.Subscription{{Filter: filter, QoS: 2}}})
		if ack, ok := c.recv().(*packet.Suback); !ok || ack.Reasons[0] != packet.GrantedQoS2 {
			t.Fatalf("SUBACK %+v", ack)
		}
	}
	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	subWithID(a, 1, suiteTopics[0], 456789)
	b, _ := connect5(t, addr, bClient, true, packet.Properties{})
	subWithID(b, 1, suiteTopics[0], 2)
	subWithID(b, 2, suiteTopics[0]+"/#", 3)
	gotB := b.exchange(1, &packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 3, Payload: []byte("sub identifier test")})
	gotA := a.exchange(1)
	if ids := gotA[0].Properties.SubscriptionIDs; !slices.Equal(ids, []uint32{456789}) {
		t.Errorf("a got identifiers %v, want [456789]", ids)
	}
	ids := slices.Clone(gotB[0].Properties.SubscriptionIDs)
	slices.Sort(ids)
	if !slices.Equal(ids, []uint32{2, 3}) {
		t.Errorf("b got identifiers %v, want 2 and 3", ids)
	}
}

// test_request_response: Response Topic and Correlation Data go through
// unchanged [MQTT-3.3.2-15, MQTT-3.3.2-16], so the responder can answer.
func TestConformanceV5_RequestResponse(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	b, _ := connect5(t, addr, bClient, true, packet.Properties{})
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2, NoLocal: true})
	b.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2, NoLocal: true})
	req := &packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: []byte("request")}
	req.Properties.ResponseTopic, req.Properties.CorrelationData = suiteTopics[0], []byte("334")
	req.Properties.Present.Add(packet.PropResponseTopic)
	req.Properties.Present.Add(packet.PropCorrelationData)
	a.exchange(0, req)
	got := b.exchange(1)[0]
	if got.Properties.ResponseTopic != suiteTopics[0] || !bytes.Equal(got.Properties.CorrelationData, []byte("334")) {
		t.Fatalf("responder got properties %+v", got.Properties)
	}
	resp := &packet.Publish{Topic: got.Properties.ResponseTopic, QoS: 1, PacketID: 3, Payload: []byte("response"),
		Properties: got.Properties}
	resp.Properties.SubscriptionIDs = nil // a client must not send them [MQTT-3.3.4-6]
	b.exchange(0, resp)
	if p := a.exchange(1)[0]; string(p.Payload) != "response" || !bytes.Equal(p.Properties.CorrelationData, []byte("334")) {
		t.Fatalf("requester got %+v", p)
	}
}

func withTopicAlias(p *packet.Publish, alias uint16) *packet.Publish {
	p.Properties.TopicAlias = alias
	p.Properties.Present.Add(packet.PropTopicAlias)
	return p
}

// test_client_topic_alias: alias 0 is refused; an alias set with a topic
// stands for it in later PUBLISHes on the same connection only
// [MQTT-3.3.2-8, MQTT-3.3.2-10, MQTT-3.3.2-12].
func TestConformanceV5_ClientTopicAlias(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	a.send(withTopicAlias(&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 1, Payload: []byte("topic alias 0")}, 0))
	a.expectDisconnectIn(packet.TopicAliasInvalid, packet.ProtocolError)

	props := withExpiry(99999)
	props.TopicAliasMaximum = 0
	props.Present.Add(packet.PropTopicAliasMaximum)
	a, ack := connect5(t, addr, aClient, true, props)
	if ack.Properties.TopicAliasMaximum == 0 {
		t.Fatal("CONNACK announces no Topic Alias Maximum; the suite then skips the rest")
	}
	a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	got := a.exchange(2,
		withTopicAlias(&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: []byte("topic alias 1")}, 1),
		withTopicAlias(&packet.Publish{QoS: 1, PacketID: 3, Payload: []byte("topic alias 2")}, 1))
	for _, p := range got {
		if p.Topic != suiteTopics[0] {
			t.Fatalf("delivered on %q, want %q", p.Topic, suiteTopics[0])
		}
	}
	a.disconnect()

	// Aliases belong to the connection, not the session.
	a, _ = connect5(t, addr, aClient, false, withExpiry(99999))
	a.exchange(1, &packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 4, Payload: []byte("topic alias 3")})
	a.send(withTopicAlias(&packet.Publish{QoS: 1, PacketID: 5, Payload: []byte("topic alias 4")}, 1))
	a.expectDisconnectIn(packet.ProtocolError, packet.TopicAliasInvalid)
}

// test_server_topic_alias: with Topic Alias Maximum 1 from the client,
// the server sets an alias on the first delivery and then sends the alias
// alone; without one (or with 0) it sends none [MQTT-3.1.2-26, MQTT-3.1.2-27].
func TestConformanceV5_ServerTopicAlias(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		max  int // -1: property absent
	}{{"maximum 1", 1}, {"absent", -1}, {"maximum 0", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := newTestBroker(t, testOptions())
			var props packet.Properties
			if tc.max >= 0 {
				props.TopicAliasMaximum = uint16(tc.max)
				props.Present.Add(packet.PropTopicAliasMaximum)
			}
			a, _ := connect5(t, addr, aClient, true, props)
			a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
			got := a.exchange(3,
				&packet.Publish{Topic: suiteTopics[0], Payload: []byte("topic alias 1")},
				&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: []byte("topic alias 1")},
				&packet.Publish{Topic: suiteTopics[0], QoS: 2, PacketID: 3, Payload: []byte("topic alias 1")})
			if tc.max <= 0 {
				for _, p := range got {
					if p.Properties.Present.Has(packet.PropTopicAlias) || p.Topic != suiteTopics[0] {
						t.Fatalf("topic alias sent to a client that allows none: %+v", p)
					}
				}
				return
			}
			alias := got[0].Properties.TopicAlias
			if !got[0].Properties.Present.Has(packet.PropTopicAlias) || alias == 0 || got[0].Topic != suiteTopics[0] {
				t.Fatalf("first delivery %q alias %d, want the topic and an alias", got[0].Topic, alias)
			}
			for _, p := range got[1:] {
				if p.Properties.TopicAlias != alias || p.Topic != "" {
					t.Fatalf("later delivery %q alias %d, want alias %d alone", p.Topic, p.Properties.TopicAlias, alias)
				}
			}
		})
	}
}

// test_maximum_packet_size: the server refuses a packet over its Maximum
// Packet Size with DISCONNECT 0x95 [MQTT-3.2.2-15 in reverse], and sends
// nothing over the client's [MQTT-3.1.2-24].
func TestConformanceV5_MaximumPacketSize(t *testing.T) {
	t.Parallel()
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		o := testOptions()
		o.MaxPacketSize = 1000 // the suite's branch needs a maximum below 65535
		_, addr := newTestBroker(t, o)
		a, ack := connect5(t, addr, aClient, true, packet.Properties{})
		max := ack.Properties.MaximumPacketSize
		if max != 1000 {
			t.Fatalf("CONNACK Maximum Packet Size %d, want 1000", max)
		}
		a.send(&packet.Publish{Topic: suiteTopics[0], Payload: bytes.Repeat([]byte("."), int(max))})
		a.expectDisconnect(packet.PacketTooLarge)
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		_, addr := newTestBroker(t, testOptions())
		props := packet.Properties{MaximumPacketSize: 64}
		props.Present.Add(packet.PropMaximumPacketSize)
		a, _ := connect5(t, addr, aClient, true, props)
		a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
		a.exchange(1, &packet.Publish{Topic: suiteTopics[0], Payload: bytes.Repeat([]byte("."), 32)})
		a.exchange(0, &packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: bytes.Repeat([]byte("."), 64)})
		a.expectNothing(300 * time.Millisecond)
	})
}

// test_server_keep_alive: the suite expects a server capped at 60 s to
// answer a keepalive of 120 with Server Keep Alive 60 [MQTT-3.2.2-21].
func TestConformanceV5_ServerKeepAlive(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxKeepAlive = 60
	_, addr := newTestBroker(t, o)
	_, ack := dialConnect(t, addr, packet.V5, &packet.Connect{ClientID: aClient, CleanStart: true, KeepAlive: 120})
	if !ack.Properties.Present.Has(packet.PropServerKeepAlive) || ack.Properties.ServerKeepAlive != 60 {
		t.Fatalf("CONNACK properties %+v, want Server Keep Alive 60", ack.Properties)
	}
}

// test_flow_control1: with Receive Maximum 2 the server has at most two
// QoS 1 deliveries unacknowledged [MQTT-3.3.4-7]; acknowledging one lets
// the next through.
func TestConformanceV5_FlowControlClientReceiveMaximum(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	props := withExpiry(0)
	props.ReceiveMaximum = 2
	props.Present.Add(packet.PropReceiveMaximum)
	c, _ := connect5(t, addr, aClient, true, props)
	c.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
	for i := 1; i <= 3; i++ {
		c.send(&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: uint16(100 + i), Payload: fmt.Appendf(nil, "message %d", i)})
	}
	var pubs []*packet.Publish
	acks := 0
	for acks < 3 || len(pubs) < 2 {
		switch pk := c.recv().(type) {
		case *packet.Puback:
			acks++
		case *packet.Publish:
			pubs = append(pubs, pk)
		default:
			t.Fatalf("got %+v", pk)
		}
	}
	if len(pubs) != 2 {
		t.Fatalf("%d deliveries unacknowledged, want 2", len(pubs))
	}
	c.expectNothing(300 * time.Millisecond)
	c.send(&packet.Puback{PacketID: pubs[0].PacketID})
	third := c.recvPublish()
	if string(third.Payload) != "message 3" {
		t.Fatalf("third delivery %q", third.Payload)
	}
}

// test_flow_control2: a client that opens more QoS 2 exchanges than the
// server's Receive Maximum is disconnected with 0x93 [MQTT-3.3.4-9].
func TestConformanceV5_FlowControlServerReceiveMaximum(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	c, ack := connect5(t, addr, aClient, true, packet.Properties{})
	max := 65535
	if ack.Properties.Present.Has(packet.PropReceiveMaximum) {
		max = int(ack.Properties.ReceiveMaximum)
	}
	if max > 1000 {
		t.Fatalf("server Receive Maximum %d: too large to test", max)
	}
	for i := 1; i <= max+1; i++ {
		c.send(&packet.Publish{Topic: suiteTopics[0], QoS: 2, PacketID: uint16(i), Payload: []byte("x")})
	}
	c.expectDisconnect(packet.ReceiveMaximumExceeded)
}

// test_will_delay: the will goes after the Will Delay Interval or when
// the session ends, whichever is first [MQTT-3.1.3-9]. The suite uses
// delay 3 / expiry 5, 5 / 0 and 5 / 2; the same orderings, shorter, here.
func TestConformanceV5_WillDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		delay, expiry uint32
		after         time.Duration // earliest arrival
	}{{1, 3, time.Second}, {5, 0, 0}, {5, 1, time.Second}} {
		t.Run(fmt.Sprintf("delay %d expiry %d", tc.delay, tc.expiry), func(t *testing.T) {
			t.Parallel()
			_, addr := newTestBroker(t, testOptions())
			b, _ := connect5(t, addr, bClient, true, packet.Properties{})
			b.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
			cp := &packet.Connect{ClientID: aClient, CleanStart: true, Properties: withExpiry(tc.expiry),
				WillFlag: true, WillTopic: suiteTopics[0], WillPayload: []byte("test_will_delay will message")}
			cp.WillProperties.WillDelay = tc.delay
			cp.WillProperties.Present.Add(packet.PropWillDelay)
			a, _ := dialConnect(t, addr, packet.V5, cp)
			a.nc.Close()
			start := time.Now()
			p := b.exchange(1)[0]
			d := time.Since(start)
			if string(p.Payload) != "test_will_delay will message" {
				t.Fatalf("got %+v", p)
			}
			if d < tc.after-100*time.Millisecond || d > tc.after+1500*time.Millisecond {
				t.Fatalf("will after %v, want about %v", d, tc.after)
			}
		})
	}
}

// test_shared_subscriptions: with "$share/sharename/client_test5/x" and
// "TopicA" on two clients, a TopicA message reaches both and each shared
// message exactly one of them [MQTT-4.8.2].
func TestConformanceV5_SharedSubscriptions(t *testing.T) {
	t.Parallel()
	const (
		sharedFilter = "$share/sharename/client_test5/x"
		sharedTopic  = "client_test5/x"
		count        = 10
	)
	_, addr := newTestBroker(t, testOptions())
	a, _ := connect5(t, addr, aClient, true, packet.Properties{})
	b, _ := connect5(t, addr, bClient, true, packet.Properties{})
	for _, c := range []*rawClient{a, b} {
		ack := c.subscribe(1, packet.Subscription{Filter: sharedFilter, QoS: 2}, packet.Subscription{Filter: suiteTopics[0], QoS: 2})
		if !slices.Equal(ack.Reasons, []packet.Reason{packet.GrantedQoS2, packet.GrantedQoS2}) {
			t.Fatalf("SUBACK %v", ack.Reasons)
		}
	}
	b.exchange(1, &packet.Publish{Topic: suiteTopics[0], Payload: []byte("message 0")})
	a.exchange(1)

	for i := range count {
		b.send(&packet.Publish{Topic: sharedTopic, Payload: fmt.Appendf(nil, "shared %d", i)})
	}
	seen := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < count && time.Now().Before(deadline) {
		for _, c := range []*rawClient{a, b} {
			if pk, err := c.tryRecv(20 * time.Millisecond); err == nil {
				p, ok := pk.(*packet.Publish)
				if !ok {
					t.Fatalf("got %+v", pk)
				}
				seen[string(p.Payload)]++
			}
		}
	}
	a.expectNothing(100 * time.Millisecond)
	b.expectNothing(100 * time.Millisecond)
	if len(seen) != count {
		t.Fatalf("received %d of %d shared messages", len(seen), count)
	}
	for m, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", m, n)
		}
	}
}
