package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// The behaviours that Eclipse Paho's interoperability suite
// (paho.mqtt.testing, interoperability/client_test.py for 3.1.1 and
// client_test5.py for 5.0) checks of a broker, tested here with our own
// raw client. docs/conformance.md maps each suite test to the test here.
// Topic names and client identifiers are the suite's where it matters.

var (
	// The suite's topics and wildcard filters.
	suiteTopics = [...]string{"TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"}
	suiteWild   = [...]string{"TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#"}
	bothLevels  = []packet.Version{packet.V311, packet.V5}
)

const (
	aClient = "myclientid"
	bClient = "myclientid2"
)

// suiteProps are the user properties the v5 suite attaches.
var suiteProps = []packet.UserProperty{{Key: "a", Value: "2"}, {Key: "c", Value: "3"}}

// dialConnect opens a connection and requires CONNECT to succeed. For v5
// the Connect may carry properties; KeepAlive defaults to 60 s.
func dialConnect(t testing.TB, addr string, v packet.Version, cp *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c := dialRaw(t, addr, v)
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 60
	}
	ack := c.connect(cp)
	if ack.Reason != packet.Success {
		t.Fatalf("connect %q: %v", cp.ClientID, ack.Reason)
	}
	return c, ack
}

// exchange sends pubs, then reads until every one of their QoS 1 and 2
// exchanges is complete and want messages have been delivered to c,
// acknowledging each delivery. It returns the deliveries in order of
// arrival; the server may interleave acknowledgements and deliveries.
func (c *rawClient) exchange(want int, pubs ...*packet.Publish) []*packet.Publish {
	c.t.Helper()
	pending := map[uint16]bool{}
	for _, p := range pubs {
		c.send(p)
		if p.QoS > 0 {
			pending[p.PacketID] = true
		}
	}
	var got []*packet.Publish
	awaitRel := 0
	for len(got) < want || len(pending) > 0 || awaitRel > 0 {
		switch pk := c.recv().(type) {
		case *packet.Puback:
			delete(pending, pk.PacketID)
		case *packet.Pubrec:
			if pk.Reason.Failed() {
				delete(pending, pk.PacketID)
			} else {
				c.send(&packet.Pubrel{PacketID: pk.PacketID})
			}
		case *packet.Pubcomp:
			delete(pending, pk.PacketID)
		case *packet.Publish:
			got = append(got, pk)
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
			c.t.Fatalf("got %s %+v during exchange", pk.Type(), pk)
		}
	}
	if len(got) > want {
		c.t.Fatalf("got %d messages, want %d: %s", len(got), want, describe(pubsToPackets(got)))
	}
	return got
}

func qosSet(ps []*packet.Publish) []byte {
	var qs []byte
	for _, p := range ps {
		qs = append(qs, p.QoS)
	}
	slices.Sort(qs)
	return qs
}

func sameUserProps(got []packet.UserProperty, want []packet.UserProperty) bool {
	return slices.Equal(got, want)
}

func forBoth(t *testing.T, f func(t *testing.T, v packet.Version)) {
	for _, v := range bothLevels {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			f(t, v)
		})
	}
}

// test_basic / testBasic.
func TestConformance_Basic(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		a, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		a.disconnect()
		a, ack := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		if ack.SessionPresent {
			t.Fatal("session present after a clean start")
		}
		if r := a.subscribe(1, packet.Subscription{Filter: suiteTopics[0], QoS: 2}).Reasons; r[0] != packet.GrantedQoS2 {
			t.Fatalf("SUBACK %v", r)
		}
		got := a.exchange(3,
			&packet.Publish{Topic: suiteTopics[0], Payload: []byte("qos 0")},
			&packet.Publish{Topic: suiteTopics[0], QoS: 1, PacketID: 2, Payload: []byte("qos 1")},
			&packet.Publish{Topic: suiteTopics[0], QoS: 2, PacketID: 3, Payload: []byte("qos 2")})
		if qs := qosSet(got); !slices.Equal(qs, []byte{0, 1, 2}) {
			t.Fatalf("QoS received %v", qs)
		}
		a.disconnect()

		// A second CONNECT on the same connection is refused.
		a, _ = dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		a.send(&packet.Connect{ClientID: aClient, CleanStart: true, ProtocolName: "MQTT", Version: v})
		if v == packet.V5 {
			a.expectDisconnect(packet.ProtocolError)
		} else {
			a.expectNoPacketClose()
		}
		// A wrong protocol name is refused.
		c := dialRaw(t, addr, v)
		c.send(&packet.Connect{ClientID: aClient, CleanStart: true, ProtocolName: "hj", Version: v})
		c.expectConnackClose(packet.UnsupportedProtocolVersion)
	})
}

// test_retained_message(s): retained messages on three topics at QoS 0, 1
// and 2 arrive on subscribe with the retain flag (v5: with their user
// properties in order); empty retained messages delete them.
func TestConformance_RetainedMessages(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		a, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		var pubs []*packet.Publish
		for q := byte(0); q <= 2; q++ {
			p := &packet.Publish{Topic: suiteTopics[q+1], QoS: q, PacketID: uint16(q), Retain: true,
				Payload: fmt.Appendf(nil, "qos %d", q)}
			p.Properties.User = suiteProps
			pubs = append(pubs, p)
		}
		a.exchange(0, pubs...)
		a.subscribe(10, packet.Subscription{Filter: suiteWild[5], QoS: 2})
		got := a.exchange(3)
		if qs := qosSet(got); !slices.Equal(qs, []byte{0, 1, 2}) {
			t.Fatalf("QoS received %v", qs)
		}
		for _, p := range got {
			if !p.Retain {
				t.Errorf("%s: retain flag not set on a retained message [MQTT-3.3.1-8]", p.Topic)
			}
			if v == packet.V5 && !sameUserProps(p.Properties.User, suiteProps) {
				t.Errorf("%s: user properties %v, want %v", p.Topic, p.Properties.User, suiteProps)
			}
		}
		a.disconnect()

		a, _ = dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		for q := byte(0); q <= 2; q++ {
			pubs[q].Payload = nil // deletes the retained message [MQTT-3.3.1-10]
			pubs[q].PacketID += 20
		}
		a.exchange(0, pubs...)
		a.subscribe(30, packet.Subscription{Filter: suiteWild[5], QoS: 2})
		a.expectNothing(200 * time.Millisecond)
	})
}

// test_will_message and will_message_test: the will goes out when the
// client's connection is dropped, and (v5) when its keepalive runs out,
// with its user properties in order.
func TestConformance_WillMessage(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		for _, how := range []string{"terminate", "keepalive"} {
			t.Run(how, func(t *testing.T) {
				t.Parallel()
				_, addr := newTestBroker(t, testOptions())
				cp := &packet.Connect{ClientID: aClient, CleanStart: true, KeepAlive: 1, WillFlag: true,
					WillTopic: suiteTopics[2], WillPayload: []byte("will message")}
				cp.WillProperties.User = suiteProps
				a, _ := dialConnect(t, addr, v, cp)
				b, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: bClient, CleanStart: false})
				b.subscribe(1, packet.Subscription{Filter: suiteTopics[2], QoS: 2})
				if how == "terminate" {
					a.nc.Close()
				} // else: a says nothing and its keepalive expires
				got := b.exchange(1)
				if string(got[0].Payload) != "will message" || got[0].Topic != suiteTopics[2] {
					t.Fatalf("got %+v", got[0])
				}
				if v == packet.V5 && !sameUserProps(got[0].Properties.User, suiteProps) {
					t.Fatalf("will user properties %v, want %v", got[0].Properties.User, suiteProps)
				}
			})
		}
	})
}

// test_zero_length_clientid and test_assigned_clientid: 3.1.1 refuses an
// empty identifier with clean session 0 and accepts it with 1; v5 accepts
// both and assigns an identifier, and assigns none when one is given.
func TestConformance_ZeroLengthClientID(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		for _, clean := range []bool{false, true} {
			c := dialRaw(t, addr, v)
			c.send(&packet.Connect{CleanStart: clean, KeepAlive: 30, ProtocolName: "MQTT", Version: v})
			if v == packet.V311 && !clean {
				c.expectConnackClose(packet.ClientIdentifierNotValid)
				continue
			}
			ack, ok := c.recv().(*packet.Connack)
			if !ok || ack.Reason != packet.Success {
				t.Fatalf("clean %v: got %+v", clean, ack)
			}
			if v == packet.V5 && ack.Properties.AssignedClientID == "" {
				t.Fatalf("clean %v: no Assigned Client Identifier [MQTT-3.2.2-16]", clean)
			}
			c.disconnect()
		}
		if v == packet.V5 {
			_, ack := dialConnect(t, addr, v, &packet.Connect{ClientID: "client0", CleanStart: true})
			if ack.Properties.Present.Has(packet.PropAssignedClientID) {
				t.Fatalf("identifier assigned although the client gave one: %q", ack.Properties.AssignedClientID)
			}
		}
	})
}

// test_offline_message_queueing: QoS 1 and 2 messages (and, if the broker
// queues them, QoS 0) wait for an offline persistent session.
func TestConformance_OfflineMessageQueueing(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		for _, queueQoS0 := range []bool{false, true} {
			t.Run(fmt.Sprintf("QueueQoS0=%v", queueQoS0), func(t *testing.T) {
				t.Parallel()
				o := testOptions()
				o.QueueQoS0 = queueQoS0
				s, addr := newTestBroker(t, o)
				cp := func(clean bool) *packet.Connect {
					cp := &packet.Connect{ClientID: aClient, CleanStart: clean}
					if v == packet.V5 {
						cp.Properties = withExpiry(99999)
					}
					return cp
				}
				a, _ := dialConnect(t, addr, v, cp(v == packet.V5)) // 3.1.1: clean session 0
				a.subscribe(1, packet.Subscription{Filter: suiteWild[5], QoS: 2})
				a.disconnect()
				waitOffline(t, s, aClient)

				b, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: bClient, CleanStart: true})
				b.exchange(0,
					&packet.Publish{Topic: suiteTopics[1], Payload: []byte("qos 0")},
					&packet.Publish{Topic: suiteTopics[2], QoS: 1, PacketID: 1, Payload: []byte("qos 1")},
					&packet.Publish{Topic: suiteTopics[3], QoS: 2, PacketID: 2, Payload: []byte("qos 2")})
				b.disconnect()

				a, ack := dialConnect(t, addr, v, cp(false))
				if !ack.SessionPresent {
					t.Fatal("session not present")
				}
				want := 2
				if queueQoS0 {
					want = 3
				}
				got := a.exchange(want)
				a.expectNothing(100 * time.Millisecond)
				if qs := qosSet(got); want == 2 && !slices.Equal(qs, []byte{1, 2}) || want == 3 && !slices.Equal(qs, []byte{0, 1, 2}) {
					t.Fatalf("QoS received %v", qs)
				}
			})
		}
	})
}

// test_overlapping_subscriptions: "TopicA/#" at QoS 2 and "TopicA/+" at
// QoS 1 both match "TopicA/C". The suite accepts one message at QoS 2 or
// one per subscription; gatemq sends one, at the highest granted QoS
// [MQTT-3.3.5-1].
func TestConformance_OverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		a, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		a.subscribe(1, packet.Subscription{Filter: suiteWild[6], QoS: 2}, packet.Subscription{Filter: suiteWild[0], QoS: 1})
		got := a.exchange(1, &packet.Publish{Topic: suiteTopics[3], QoS: 2, PacketID: 2, Payload: []byte("overlapping topic filters")})
		a.expectNothing(200 * time.Millisecond)
		if got[0].QoS != 2 {
			t.Fatalf("delivered at QoS %d, want 2", got[0].QoS)
		}
	})
}

// test_keepalive: a client silent past its keepalive is disconnected and
// its will published; a client with keepalive 0 is never timed out. The
// suite uses 5 s; 1 s here.
func TestConformance_KeepAlive(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		a, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true, KeepAlive: 1,
			WillFlag: true, WillTopic: suiteTopics[4], WillPayload: []byte("keepalive expiry")})
		b := dialRaw(t, addr, v)
		if ack := b.connect(&packet.Connect{ClientID: bClient, CleanStart: true}); ack.Reason != packet.Success {
			t.Fatal(ack.Reason)
		}
		b.subscribe(1, packet.Subscription{Filter: suiteTopics[4], QoS: 2})
		start := time.Now()
		if v == packet.V5 {
			a.expectDisconnect(packet.KeepAliveTimeout)
		} else {
			a.expectNoPacketClose()
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("disconnected after %v", d)
		}
		if got := b.exchange(1); string(got[0].Payload) != "keepalive expiry" {
			t.Fatalf("got %+v", got[0])
		}
		b.expectNothing(500 * time.Millisecond) // longer than a's timeout: b, at keepalive 0, stays
		b.ping()
	})
}

// test_redelivery_on_reconnect: deliveries left unacknowledged when the
// client disconnects are sent again, with DUP, when it resumes.
func TestConformance_RedeliveryOnReconnect(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		s, addr := newTestBroker(t, testOptions())
		cp := func() *packet.Connect {
			cp := &packet.Connect{ClientID: bClient, CleanStart: false}
			if v == packet.V5 {
				cp.Properties = withExpiry(99999)
			}
			return cp
		}
		b, _ := dialConnect(t, addr, v, cp())
		b.subscribe(1, packet.Subscription{Filter: suiteWild[6], QoS: 2})
		// "Paused": publish, read nothing, acknowledge nothing.
		b.send(&packet.Publish{Topic: suiteTopics[1], QoS: 1, PacketID: 2})
		b.send(&packet.Publish{Topic: suiteTopics[3], QoS: 2, PacketID: 3})
		testkit.WaitFor(t, 5*time.Second, func() error {
			if n := s.sessions.Get(bClient).Stats().Inflight; n != 2 {
				return fmt.Errorf("%d in flight", n)
			}
			return nil
		})
		b.send(&packet.Disconnect{})
		b.expectClosed()
		waitOffline(t, s, bClient)

		b, _ = dialConnect(t, addr, v, cp())
		// The QoS 2 message from b awaits its PUBREL: b completes it.
		b.send(&packet.Pubrel{PacketID: 3})
		got := b.exchange(2)
		for _, p := range got {
			if !p.Dup {
				t.Errorf("%s resent without DUP", p.Topic)
			}
		}
		if qs := qosSet(got); !slices.Equal(qs, []byte{1, 2}) {
			t.Fatalf("QoS received %v", qs)
		}
		testkit.WaitFor(t, 5*time.Second, func() error { // the PUBCOMP went by in exchange
			if st := s.sessions.Get(bClient).Stats(); st.InboundQoS2 != 0 || st.Inflight != 0 {
				return fmt.Errorf("session state %+v", st)
			}
			return nil
		})
	})
}

// test_subscribe_failure: the suite subscribes to "nosubscribe" (3.1.1)
// or "test/nosubscribe" (v5) and expects return code 0x80, which needs a
// broker configured to refuse that filter.
func TestConformance_SubscribeFailure(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		// scripts/conformance.toml refuses the suite's filters with
		// mqtt.deny_subscribe; main_test.go checks that file.
		o := testOptions()
		o.DenySubscribe = []string{"nosubscribe", "test/nosubscribe"}
		_, addr := newTestBroker(t, o)
		a, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		filter := "nosubscribe"
		if v == packet.V5 {
			filter = "test/nosubscribe"
		}
		r := a.subscribe(1, packet.Subscription{Filter: filter, QoS: 2}, packet.Subscription{Filter: "TopicA", QoS: 2}).Reasons
		if len(r) != 2 || r[0] != 0x80 || r[1] != packet.GrantedQoS2 {
			t.Fatalf("SUBACK %v, want [0x80 granted-qos-2]", r)
		}
		a.ping() // the connection carries on
	})
}

// test_dollar_topics: a filter starting with a wildcard does not match a
// topic starting with "$" [MQTT-4.7.2-1]; one naming the "$" level does.
func TestConformance_DollarTopics(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		b, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: bClient, CleanStart: true})
		b.subscribe(1, packet.Subscription{Filter: suiteWild[5], QoS: 2}, packet.Subscription{Filter: "#", QoS: 2})
		b.exchange(0, &packet.Publish{Topic: "$" + suiteTopics[1], QoS: 1, PacketID: 2})
		b.expectNothing(200 * time.Millisecond)
		b.subscribe(3, packet.Subscription{Filter: "$TopicA/+", QoS: 2})
		got := b.exchange(1, &packet.Publish{Topic: "$" + suiteTopics[1], QoS: 1, PacketID: 4, Payload: []byte("x")})
		if got[0].Topic != "$TopicA/B" {
			t.Fatalf("got %+v", got[0])
		}
	})
}

// test_unsubscribe: after unsubscribing from one of three topics, only
// the other two receive.
func TestConformance_Unsubscribe(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T, v packet.Version) {
		_, addr := newTestBroker(t, testOptions())
		b, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: bClient, CleanStart: true})
		for i := range 3 {
			b.subscribe(uint16(i+1), packet.Subscription{Filter: suiteTopics[i], QoS: 2})
		}
		b.send(&packet.Unsubscribe{PacketID: 9, Filters: []string{suiteTopics[0]}})
		ua, ok := b.recv().(*packet.Unsuback)
		if !ok || ua.PacketID != 9 || v == packet.V5 && (len(ua.Reasons) != 1 || ua.Reasons[0] != packet.Success) {
			t.Fatalf("got %+v, want UNSUBACK 9", ua)
		}
		a, _ := dialConnect(t, addr, v, &packet.Connect{ClientID: aClient, CleanStart: true})
		for i := range 3 {
			a.exchange(0, &packet.Publish{Topic: suiteTopics[i], QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
		}
		got := b.exchange(2)
		b.expectNothing(200 * time.Millisecond)
		for _, p := range got {
			if p.Topic == suiteTopics[0] {
				t.Fatalf("received on the unsubscribed topic")
			}
		}
	})
}
