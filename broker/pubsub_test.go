package broker

import (
	"bytes"
	"testing"
	"time"

	"gatemq/broker/packet"
)

var allVersions = []packet.Version{packet.V31, packet.V311, packet.V5}

func TestServer_PublishSubscribeAllQoS(t *testing.T) {
	for _, v := range allVersions {
		t.Run(v.String(), func(t *testing.T) {
			_, addr := newTestBroker(t, testOptions())
			sub := dialRaw(t, addr, v)
			sub.mustConnect("sub", true)
			ack := sub.subscribe(1, packet.Subscription{Filter: "a/+/c", QoS: 2})
			if len(ack.Reasons) != 1 || ack.Reasons[0] != packet.GrantedQoS2 {
				t.Fatalf("suback %+v", ack)
			}
			pub := dialRaw(t, addr, v)
			pub.mustConnect("pub", true)
			for qos := byte(0); qos <= 2; qos++ {
				payload := []byte{'q', '0' + qos}
				pub.send(&packet.Publish{Topic: "a/b/c", QoS: qos, PacketID: uint16(qos) * 10, Payload: payload})
				switch qos {
				case 1:
					if a, ok := pub.recv().(*packet.Puback); !ok || a.PacketID != 10 {
						t.Fatalf("want PUBACK 10, got %+v", a)
					}
				case 2:
					if a, ok := pub.recv().(*packet.Pubrec); !ok || a.PacketID != 20 {
						t.Fatalf("want PUBREC 20, got %+v", a)
					}
					pub.send(&packet.Pubrel{PacketID: 20})
					if a, ok := pub.recv().(*packet.Pubcomp); !ok || a.PacketID != 20 {
						t.Fatalf("want PUBCOMP 20, got %+v", a)
					}
				}
				p := sub.recvPublish()
				if p.Topic != "a/b/c" || !bytes.Equal(p.Payload, payload) || p.QoS != qos || p.Retain {
					t.Fatalf("qos %d: got %+v", qos, p)
				}
				switch qos {
				case 1:
					sub.send(&packet.Puback{PacketID: p.PacketID})
				case 2:
					sub.send(&packet.Pubrec{PacketID: p.PacketID})
					if r, ok := sub.recv().(*packet.Pubrel); !ok || r.PacketID != p.PacketID {
						t.Fatalf("want PUBREL, got %+v", r)
					}
					sub.send(&packet.Pubcomp{PacketID: p.PacketID})
				}
			}
		})
	}
}

func TestServer_QoSDowngrade(t *testing.T) {
	_, addr := newTestBroker(t, testOptions())
	sub := dialRaw(t, addr, packet.V311)
	sub.mustConnect("sub", true)
	sub.subscribe(1, packet.Subscription{Filter: "t", QoS: 1})
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("pub", true)
	pub.send(&packet.Publish{Topic: "t", QoS: 2, PacketID: 5, Payload: []byte("x")})
	if p := sub.recvPublish(); p.QoS != 1 {
		t.Fatalf("got QoS %d, want 1", p.QoS)
	}
}

func TestServer_WildcardsAndDollarTopics(t *testing.T) {
	_, addr := newTestBroker(t, testOptions())
	sub := dialRaw(t, addr, packet.V311)
	sub.mustConnect("sub", true)
	sub.subscribe(1, packet.Subscription{Filter: "#"}, packet.Subscription{Filter: "+/x"})
	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("pub", true)
	// A leading wildcard does not match a $ topic [MQTT-4.7.2-1].
	pub.send(&packet.Publish{Topic: "$dollar/x", Payload: []byte("no")})
	pub.send(&packet.Publish{Topic: "sport/x", Payload: []byte("yes")})
	p := sub.recvPublish()
	if p.Topic != "sport/x" {
		t.Fatalf("got %q first, want sport/x", p.Topic)
	}
	sub.expectNothing(100 * time.Millisecond) // one delivery for two overlapping subscriptions
}
