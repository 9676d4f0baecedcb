package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
)

// TestQoS_BothDirections publishes with each QoS to subscriptions granted
// each QoS: the message arrives once with the lower of the two
// [MQTT-3.8.4-8].
func TestQoS_BothDirections(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
		for subQoS := byte(0); subQoS <= 2; subQoS++ {
			t.Run(fmt.Sprintf("publish %d subscribe %d", pubQoS, subQoS), func(t *testing.T) {
				t.Parallel()
				topic := fmt.Sprintf("qos/%d/%d", pubQoS, subQoS)
				sub := connectV5(t, addr, &paho.Connect{ClientID: "sub-" + topic, CleanStart: true})
				ack := sub.subscribeWith(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: subQoS}}})
				if len(ack.Reasons) != 1 || ack.Reasons[0] != subQoS {
					t.Fatalf("SUBACK %v, want granted QoS %d", ack.Reasons, subQoS)
				}
				pub := connectV5(t, addr, &paho.Connect{ClientID: "pub-" + topic, CleanStart: true})
				for i := range 3 {
					r := pub.publish(&paho.Publish{Topic: topic, QoS: pubQoS, Payload: []byte{byte(i)}})
					if pubQoS > 0 && r.ReasonCode != 0 {
						t.Fatalf("ack reason 0x%02x", r.ReasonCode)
					}
				}
				want := min(pubQoS, subQoS)
				for i := range 3 {
					p := sub.recv()
					if p.Topic != topic || p.QoS != want || len(p.Payload) != 1 || p.Payload[0] != byte(i) {
						t.Fatalf("message %d: got %q QoS %d payload %v, want QoS %d", i, p.Topic, p.QoS, p.Payload, want)
					}
				}
				sub.expectNothing(50 * time.Millisecond)
			})
		}
	}
}

// TestQoS_MaximumQoS checks a server that grants at most QoS 1: CONNACK
// says so, SUBACK grants 1 for 2, and a QoS 2 PUBLISH is refused with
// DISCONNECT 0x9B [MQTT-3.2.2-11].
func TestQoS_MaximumQoS(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxQoS = 1
	_, addr := newTestBroker(t, o)
	c, ack := connectRaw(t, addr, &packet.Connect{ClientID: "maxqos", CleanStart: true})
	if !ack.Properties.Present.Has(packet.PropMaximumQoS) || ack.Properties.MaximumQoS != 1 {
		t.Fatalf("CONNACK Maximum QoS %v %d, want 1", ack.Properties.Present.Has(packet.PropMaximumQoS), ack.Properties.MaximumQoS)
	}
	if sa := c.subscribe(1, packet.Subscription{Filter: "mq", QoS: 2}); sa.Reasons[0] != packet.GrantedQoS1 {
		t.Fatalf("SUBACK %v, want granted QoS 1", sa.Reasons)
	}
	c.send(&packet.Publish{Topic: "mq", QoS: 2, PacketID: 1, Payload: []byte("x")})
	c.expectDisconnect(packet.QoSNotSupported)
}

// TestQoS_ClientReceiveMaximum checks that the server never has more
// QoS 1 or 2 messages awaiting acknowledgement than the client's Receive
// Maximum [MQTT-3.3.4-7].
func TestQoS_ClientReceiveMaximum(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			t.Parallel()
			topic := fmt.Sprintf("rm/%d", qos)
			props := packet.Properties{ReceiveMaximum: 1}
			props.Present.Add(packet.PropReceiveMaximum)
			sub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "rm-sub-" + topic, CleanStart: true, Properties: props})
			sub.subscribe(1, packet.Subscription{Filter: topic, QoS: qos})

			pub := connectV5(t, addr, &paho.Connect{ClientID: "rm-pub-" + topic, CleanStart: true})
			const n = 4
			for i := range n {
				pub.publish(&paho.Publish{Topic: topic, QoS: qos, Payload: []byte{byte(i)}})
			}
			for i := range n {
				p := sub.recvPublish()
				if p.QoS != qos || p.Payload[0] != byte(i) {
					t.Fatalf("got QoS %d payload %v, want message %d", p.QoS, p.Payload, i)
				}
				// Nothing more until this one is acknowledged.
				sub.expectNothing(100 * time.Millisecond)
				if qos == 1 {
					sub.send(&packet.Puback{PacketID: p.PacketID})
					continue
				}
				sub.send(&packet.Pubrec{PacketID: p.PacketID})
				if r, ok := sub.recv().(*packet.Pubrel); !ok || r.PacketID != p.PacketID {
					t.Fatalf("want PUBREL %d, got %+v", p.PacketID, r)
				}
				// Still in flight until PUBCOMP [MQTT-4.9.0-2].
				sub.expectNothing(100 * time.Millisecond)
				sub.send(&packet.Pubcomp{PacketID: p.PacketID})
			}
		})
	}
}

// TestQoS_ServerReceiveMaximum checks that the server announces its
// Receive Maximum and disconnects a client that has more QoS 2 messages
// awaiting PUBREL than that with 0x93 [MQTT-3.3.4-9].
func TestQoS_ServerReceiveMaximum(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxInflight = 2
	_, addr := newTestBroker(t, o)

	t.Run("within the window", func(t *testing.T) {
		c, ack := connectRaw(t, addr, &packet.Connect{ClientID: "srm-ok", CleanStart: true})
		if !ack.Properties.Present.Has(packet.PropReceiveMaximum) || ack.Properties.ReceiveMaximum != 2 {
			t.Fatalf("CONNACK Receive Maximum %d, want 2", ack.Properties.ReceiveMaximum)
		}
		// Released exchanges free their slot: 5 messages, at most 2 open.
		for id := uint16(1); id <= 5; id++ {
			c.send(&packet.Publish{Topic: "srm", QoS: 2, PacketID: id, Payload: []byte("x")})
			if r, ok := c.recv().(*packet.Pubrec); !ok || r.PacketID != id {
				t.Fatalf("want PUBREC %d, got %+v", id, r)
			}
			if id > 1 {
				c.send(&packet.Pubrel{PacketID: id - 1})
				if r, ok := c.recv().(*packet.Pubcomp); !ok || r.PacketID != id-1 || r.Reason != packet.Success {
					t.Fatalf("want PUBCOMP %d, got %+v", id-1, r)
				}
			}
		}
	})
	t.Run("exceeded", func(t *testing.T) {
		c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "srm-over", CleanStart: true})
		for id := uint16(1); id <= 2; id++ {
			c.send(&packet.Publish{Topic: "srm", QoS: 2, PacketID: id, Payload: []byte("x")})
			if r, ok := c.recv().(*packet.Pubrec); !ok || r.PacketID != id {
				t.Fatalf("want PUBREC %d, got %+v", id, r)
			}
		}
		c.send(&packet.Publish{Topic: "srm", QoS: 2, PacketID: 3, Payload: []byte("x")})
		c.expectDisconnect(packet.ReceiveMaximumExceeded)
	})
}

// TestQoS_ResendInflightOnResume checks that unacknowledged messages are
// sent again, DUP set and with their packet ID, when the session resumes,
// and that a QoS 2 message whose PUBREC arrived is continued with PUBREL
// [MQTT-4.4.0-1, MQTT-4.4.0-2].
func TestQoS_ResendInflightOnResume(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		qos    byte
		pubrec bool // PUBREC sent before the connection drops
	}{
		{"QoS 1 without PUBACK", 1, false},
		{"QoS 2 without PUBREC", 2, false},
		{"QoS 2 after PUBREC", 2, true},
	}
	_, addr := newTestBroker(t, testOptions())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("resend-%d", i)
			topic := "resend/" + id
			sub, _ := connectRaw(t, addr, &packet.Connect{ClientID: id, CleanStart: true, Properties: withExpiry(60)})
			sub.subscribe(1, packet.Subscription{Filter: topic, QoS: 2})
			pub := connectV5(t, addr, &paho.Connect{ClientID: "pub-" + id, CleanStart: true})
			pub.publish(&paho.Publish{Topic: topic, QoS: tc.qos, Payload: []byte("inflight")})
			first := sub.recvPublish()
			if first.Dup || first.QoS != tc.qos {
				t.Fatalf("first delivery %+v", first)
			}
			if tc.pubrec {
				sub.send(&packet.Pubrec{PacketID: first.PacketID})
				if r, ok := sub.recv().(*packet.Pubrel); !ok || r.PacketID != first.PacketID {
					t.Fatalf("want PUBREL, got %+v", r)
				}
			}
			sub.nc.Close()

			// A connection that is still closing is taken over.
			sub, ack := connectRaw(t, addr, &packet.Connect{ClientID: id, Properties: withExpiry(60)})
			if !ack.SessionPresent {
				t.Fatal("session not present")
			}
			if tc.pubrec {
				r, ok := sub.recv().(*packet.Pubrel)
				if !ok || r.PacketID != first.PacketID {
					t.Fatalf("want PUBREL %d again, got %+v", first.PacketID, r)
				}
				sub.send(&packet.Pubcomp{PacketID: first.PacketID})
				sub.expectNothing(100 * time.Millisecond)
				return
			}
			again := sub.recvPublish()
			if !again.Dup || again.PacketID != first.PacketID || again.QoS != tc.qos || string(again.Payload) != "inflight" {
				t.Fatalf("resent %+v, want DUP with packet ID %d", again, first.PacketID)
			}
			if tc.qos == 1 {
				sub.send(&packet.Puback{PacketID: again.PacketID})
			} else {
				sub.send(&packet.Pubrec{PacketID: again.PacketID})
				if r, ok := sub.recv().(*packet.Pubrel); !ok || r.PacketID != again.PacketID {
					t.Fatalf("want PUBREL, got %+v", r)
				}
				sub.send(&packet.Pubcomp{PacketID: again.PacketID})
			}
			sub.expectNothing(100 * time.Millisecond)
		})
	}
}

// TestQoS_ExactlyOnce checks that a QoS 2 PUBLISH sent again with its
// packet ID before PUBREL, on the same connection or after a resume, is
// delivered once [MQTT-4.3.3-10], and that the ID is free after PUBCOMP.
func TestQoS_ExactlyOnce(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	sub := connectV5(t, addr, &paho.Connect{ClientID: "eo-sub", CleanStart: true})
	sub.subscribe("eo/#")

	t.Run("same connection", func(t *testing.T) {
		pub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "eo-pub-1", CleanStart: true})
		p := &packet.Publish{Topic: "eo/1", QoS: 2, PacketID: 7, Payload: []byte("once")}
		for range 3 {
			pub.send(p)
			if r, ok := pub.recv().(*packet.Pubrec); !ok || r.PacketID != 7 || r.Reason.Failed() {
				t.Fatalf("want PUBREC 7, got %+v", r)
			}
			p.Dup = true
		}
		pub.send(&packet.Pubrel{PacketID: 7})
		if r, ok := pub.recv().(*packet.Pubcomp); !ok || r.PacketID != 7 || r.Reason != packet.Success {
			t.Fatalf("want PUBCOMP 7, got %+v", r)
		}
		if m := sub.recv(); string(m.Payload) != "once" {
			t.Fatalf("got %q", m.Payload)
		}
		sub.expectNothing(100 * time.Millisecond)

		// After PUBCOMP the ID starts a new message.
		pub.publishAck(&packet.Publish{Topic: "eo/1", QoS: 2, PacketID: 7, Payload: []byte("twice")})
		if m := sub.recv(); string(m.Payload) != "twice" {
			t.Fatalf("got %q", m.Payload)
		}
	})
	t.Run("after resume", func(t *testing.T) {
		pub, _ := connectRaw(t, addr, &packet.Connect{ClientID: "eo-pub-2", CleanStart: true, Properties: withExpiry(60)})
		pub.send(&packet.Publish{Topic: "eo/2", QoS: 2, PacketID: 9, Payload: []byte("resumed")})
		if r, ok := pub.recv().(*packet.Pubrec); !ok || r.PacketID != 9 {
			t.Fatalf("want PUBREC 9, got %+v", r)
		}
		pub.send(&packet.Disconnect{})
		pub.expectClosed()
		pub, ack := connectRaw(t, addr, &packet.Connect{ClientID: "eo-pub-2", Properties: withExpiry(60)})
		if !ack.SessionPresent {
			t.Fatal("session not present")
		}
		pub.send(&packet.Publish{Topic: "eo/2", QoS: 2, PacketID: 9, Dup: true, Payload: []byte("resumed")})
		if r, ok := pub.recv().(*packet.Pubrec); !ok || r.PacketID != 9 {
			t.Fatalf("want PUBREC 9, got %+v", r)
		}
		pub.send(&packet.Pubrel{PacketID: 9})
		if r, ok := pub.recv().(*packet.Pubcomp); !ok || r.Reason != packet.Success {
			t.Fatalf("want PUBCOMP, got %+v", r)
		}
		if m := sub.recv(); string(m.Payload) != "resumed" {
			t.Fatalf("got %q", m.Payload)
		}
		sub.expectNothing(100 * time.Millisecond)
	})
}

// TestQoS_PubrelUnknownID checks that a PUBREL for a packet ID with no
// open exchange is answered with PUBCOMP 0x92.
func TestQoS_PubrelUnknownID(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "pubrel", CleanStart: true})
	c.send(&packet.Pubrel{PacketID: 42})
	if r, ok := c.recv().(*packet.Pubcomp); !ok || r.PacketID != 42 || r.Reason != packet.PacketIdentifierNotFound {
		t.Fatalf("want PUBCOMP 42 0x92, got %+v", r)
	}
}
