package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// retainedOf subscribes c to filter with retain handling 0 and returns the
// retained messages sent for it, in the order they arrived.
func retainedOf(c *rawClient, filter string) []*packet.Publish {
	c.t.Helper()
	if ack := c.subscribe(1, packet.Subscription{Filter: filter, QoS: 2}); ack.Reasons[0].Failed() {
		c.t.Fatalf("SUBACK %v", ack.Reasons)
	}
	var got []*packet.Publish
	for {
		pk, err := c.tryRecv(100 * time.Millisecond)
		if err != nil {
			if isClosed(err) {
				c.t.Fatalf("recv: %v", err)
			}
			return got
		}
		p, ok := pk.(*packet.Publish)
		if !ok {
			c.t.Fatalf("got %T, want PUBLISH", pk)
		}
		switch p.QoS {
		case 1:
			c.send(&packet.Puback{PacketID: p.PacketID})
		case 2:
			c.send(&packet.Pubrec{PacketID: p.PacketID})
			c.recv() // PUBREL
			c.send(&packet.Pubcomp{PacketID: p.PacketID})
		}
		got = append(got, p)
	}
}

// TestRetain_StoreReplaceDelete checks that the last retained message of
// a topic is kept, replaced by the next one, deleted by an empty payload
// and sent to new subscriptions with RETAIN 1 and the lower QoS
// [MQTT-3.3.1-5, MQTT-3.3.1-6, MQTT-3.3.1-8].
func TestRetain_StoreReplaceDelete(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "rt-pub", CleanStart: true})
	check := func(step string, want ...string) {
		t.Helper()
		c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "rt-sub", CleanStart: true})
		got := retainedOf(c, "rt/#")
		var payloads []string
		for _, p := range got {
			if !p.Retain {
				t.Fatalf("%s: retained %q sent with RETAIN 0", step, p.Payload)
			}
			payloads = append(payloads, p.Topic+"="+string(p.Payload))
		}
		if fmt.Sprint(payloads) != fmt.Sprint(want) {
			t.Fatalf("%s: retained %v, want %v", step, payloads, want)
		}
	}
	pub.publish(&paho.Publish{Topic: "rt/a", QoS: 1, Retain: true, Payload: []byte("one")})
	check("stored", "rt/a=one")
	pub.publish(&paho.Publish{Topic: "rt/a", QoS: 1, Retain: true, Payload: []byte("two")})
	pub.publish(&paho.Publish{Topic: "rt/a", QoS: 1, Payload: []byte("not retained")})
	check("replaced", "rt/a=two")
	pub.publish(&paho.Publish{Topic: "rt/a", QoS: 1, Retain: true})
	check("deleted")
	if n := s.Stats().Retained; n != 0 {
		t.Fatalf("%d retained messages after delete", n)
	}
	pub.publish(&paho.Publish{Topic: "rt/b", QoS: 0, Retain: true, Payload: []byte("zero")})
	check("QoS 0", "rt/b=zero")

	// Delivered with min(published QoS, granted QoS).
	pub.publish(&paho.Publish{Topic: "rt/q", QoS: 2, Retain: true, Payload: []byte("q")})
	for granted := byte(0); granted <= 2; granted++ {
		sub := connectV5(t, addr, &paho.Connect{ClientID: fmt.Sprint("rt-q", granted), CleanStart: true})
		sub.subscribeWith(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "rt/q", QoS: granted}}})
		if p := sub.recv(); p.QoS != granted || !p.Retain {
			t.Fatalf("granted %d: got QoS %d retain %v", granted, p.QoS, p.Retain)
		}
	}
}

// TestRetain_MessageExpiry checks that a retained message is not sent
// after its Message Expiry Interval and is sent with the remaining
// interval before that [MQTT-3.3.2-5, MQTT-3.3.2-6].
func TestRetain_MessageExpiry(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "rx-pub", CleanStart: true})
	pub.publish(&paho.Publish{Topic: "rx/short", QoS: 1, Retain: true, Payload: []byte("short"),
		Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(1)}})
	pub.publish(&paho.Publish{Topic: "rx/long", QoS: 1, Retain: true, Payload: []byte("long"),
		Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(100)}})
	published := time.Now()
	c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "rx-sub", CleanStart: true})

	expiries := func() map[string]uint32 {
		m := make(map[string]uint32)
		for _, p := range retainedOf(c, "rx/+") {
			if !p.Properties.Present.Has(packet.PropMessageExpiry) {
				t.Fatalf("retained %q without Message Expiry Interval", p.Topic)
			}
			m[p.Topic] = p.Properties.MessageExpiry
		}
		return m
	}
	got := expiries()
	if got["rx/short"] != 1 || got["rx/long"] != 100 || len(got) != 2 {
		t.Fatalf("right after publishing: expiries %v", got)
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		got = expiries()
		if _, ok := got["rx/short"]; ok {
			return fmt.Errorf("expired message still sent after %v", time.Since(published))
		}
		return nil
	})
	if d := time.Since(published); d < 900*time.Millisecond {
		t.Fatalf("retained message gone after %v, want 1s", d)
	}
	if left := got["rx/long"]; left < 95 || left > 99 {
		t.Fatalf("remaining expiry %d after %v, want 99 or a little less", left, time.Since(published))
	}
}

// willConnect returns a CONNECT for a paho client with a will on topic.
func willConnect(id, topic string, expiry, delay uint32, retain bool) *paho.Connect {
	return &paho.Connect{
		ClientID:   id,
		CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(expiry)},
		WillMessage: &paho.WillMessage{
			Topic:   topic,
			QoS:     1,
			Retain:  retain,
			Payload: []byte("will of " + id),
		},
		WillProperties: &paho.WillProperties{
			WillDelayInterval: paho.Uint32(delay),
			User:              paho.UserProperties{{Key: "k", Value: "v"}},
		},
	}
}

// TestWill_Sent checks when the will is published: when the connection
// ends without DISCONNECT, after DISCONNECT 0x04, and after a protocol
// error; not after a normal DISCONNECT [MQTT-3.1.2-8, MQTT-3.1.2-10,
// MQTT-3.14.4-3].
func TestWill_Sent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		end   func(c *v5Client)
		wantW bool
	}{
		{"socket closed", (*v5Client).drop, true},
		{"DISCONNECT with will", func(c *v5Client) { c.disconnect(byte(packet.DisconnectWithWill)) }, true},
		{"normal DISCONNECT", func(c *v5Client) { c.disconnect(0) }, false},
		{"protocol error", func(c *v5Client) {
			// A second CONNECT is a protocol error [MQTT-3.1.0-2].
			c.nc.Write(packet.Append(nil, &packet.Connect{ClientID: "x"}, packet.V5))
			c.recvDisconnect()
		}, true},
	}
	_, addr := newTestBroker(t, testOptions())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("will-%d", i)
			topic := "will/" + id
			sub := connectV5(t, addr, &paho.Connect{ClientID: "sub-" + id, CleanStart: true})
			sub.subscribe(topic)
			c := connectV5(t, addr, willConnect(id, topic, 0, 0, false))
			tc.end(c)
			if !tc.wantW {
				sub.expectNothing(200 * time.Millisecond)
				return
			}
			p := sub.recv()
			if p.Topic != topic || string(p.Payload) != "will of "+id || p.QoS != 1 || p.Retain {
				t.Fatalf("will %q %q QoS %d retain %v", p.Topic, p.Payload, p.QoS, p.Retain)
			}
			if p.Properties.User.Get("k") != "v" {
				t.Fatalf("will user properties %+v not forwarded", p.Properties.User)
			}
		})
	}
}

// TestWill_Delay checks the Will Delay Interval: the will is published
// after the delay, or when the session ends if that is sooner, and is
// cancelled by a reconnection to the session within the delay; a
// reconnection with clean start ends the session and publishes it
// [MQTT-3.1.3-9].
func TestWill_Delay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		expiry    uint32
		delay     uint32
		reconnect int // 0 none, 1 clean start 0, 2 clean start 1
		wantAfter time.Duration
		wantWill  bool
	}{
		{name: "published after delay", expiry: 60, delay: 1, wantAfter: time.Second, wantWill: true},
		{name: "published when session ends first", expiry: 1, delay: 60, wantAfter: time.Second, wantWill: true},
		{name: "session expiry 0 publishes at once", expiry: 0, delay: 60, wantWill: true},
		{name: "cancelled by resume", expiry: 60, delay: 1, reconnect: 1},
		{name: "clean start publishes at once", expiry: 60, delay: 60, reconnect: 2, wantWill: true},
	}
	_, addr := newTestBroker(t, testOptions())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("will-delay-%d", i)
			topic := "will/" + id
			sub := connectV5(t, addr, &paho.Connect{ClientID: "sub-" + id, CleanStart: true})
			sub.subscribe(topic)
			c := connectV5(t, addr, willConnect(id, topic, tc.expiry, tc.delay, false))
			c.drop()
			closed := time.Now()
			if tc.reconnect > 0 {
				c = connectV5(t, addr, &paho.Connect{ClientID: id, CleanStart: tc.reconnect == 2,
					Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}})
				if !tc.wantWill {
					// Wait out the delay: the will must not come.
					sub.expectNothing(time.Duration(tc.delay)*time.Second + 500*time.Millisecond)
					return
				}
			}
			if tc.wantAfter > 0 {
				sub.expectNothing(tc.wantAfter / 2)
			}
			p := sub.recv()
			if d := time.Since(closed); d < tc.wantAfter-100*time.Millisecond || d > tc.wantAfter+time.Second {
				t.Fatalf("will after %v, want %v", d, tc.wantAfter)
			}
			if p.Topic != topic {
				t.Fatalf("got %q", p.Topic)
			}
		})
	}
}

// TestWill_Retained checks that a will with Will Retain is published as a
// retained message [MQTT-3.1.2-17].
func TestWill_Retained(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	live := connectV5(t, addr, &paho.Connect{ClientID: "live", CleanStart: true})
	live.subscribe("will/retained")
	c := connectV5(t, addr, willConnect("wr", "will/retained", 0, 0, true))
	c.drop()
	if p := live.recv(); p.Retain {
		t.Fatal("will forwarded to an existing subscription with RETAIN 1 without Retain As Published")
	}
	later := connectV5(t, addr, &paho.Connect{ClientID: "later", CleanStart: true})
	later.subscribe("will/+")
	if p := later.recv(); !p.Retain || string(p.Payload) != "will of wr" {
		t.Fatalf("got %q retain %v, want the retained will", p.Payload, p.Retain)
	}
}

// TestWill_Properties checks that the will's properties are forwarded
// with it, its Message Expiry Interval counting from its publication
// (paho.golang does not send will properties other than User Property,
// so a raw client connects) [MQTT-3.1.3-9 ff.].
func TestWill_Properties(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	sub := connectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	sub.subscribe("will/props")
	cp := &packet.Connect{ClientID: "wp", CleanStart: true, WillFlag: true, WillQoS: 1,
		WillTopic: "will/props", WillPayload: []byte("{}")}
	wp := &cp.WillProperties
	wp.PayloadFormat, wp.ContentType, wp.ResponseTopic, wp.CorrelationData, wp.MessageExpiry =
		1, "application/json", "reply/here", []byte{0, 1, 2}, 30
	for _, id := range []packet.PropID{packet.PropPayloadFormat, packet.PropContentType,
		packet.PropResponseTopic, packet.PropCorrelationData, packet.PropMessageExpiry} {
		wp.Present.Add(id)
	}
	wp.User = []packet.UserProperty{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}
	c, _ := connectRaw(t, addr, cp)
	c.nc.Close()
	p := sub.recv()
	pp := p.Properties
	if pp.PayloadFormat == nil || *pp.PayloadFormat != 1 || pp.ContentType != "application/json" ||
		pp.ResponseTopic != "reply/here" || string(pp.CorrelationData) != "\x00\x01\x02" ||
		pp.MessageExpiry == nil || *pp.MessageExpiry != 30 ||
		fmt.Sprint(pp.User.GetAll("a")) != "[1 2]" {
		t.Fatalf("will properties %+v", pp)
	}
}

// TestRetain_NotForLeadingWildcardsOrShared checks that retained messages
// on "$" topics are not sent for filters starting with a wildcard
// [MQTT-4.7.2-1], and that a shared subscription gets no retained
// messages [MQTT-4.8.2].
func TestRetain_NotForLeadingWildcardsOrShared(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "rd-pub", CleanStart: true})
	pub.publish(&paho.Publish{Topic: "$data/r", QoS: 1, Retain: true, Payload: []byte("dollar")})
	pub.publish(&paho.Publish{Topic: "data/r", QoS: 1, Retain: true, Payload: []byte("plain")})
	cases := []struct {
		filter string
		want   []string
	}{
		{"#", []string{"data/r"}},
		{"+/r", []string{"data/r"}},
		{"$data/#", []string{"$data/r"}},
		{"$data/+", []string{"$data/r"}},
		{"$share/g/#", nil},
		{"$share/g/data/r", nil},
	}
	for i, tc := range cases {
		c, _ := connectRaw(t, addr, &packet.Connect{ClientID: fmt.Sprint("rd-", i), CleanStart: true})
		var got []string
		for _, p := range retainedOf(c, tc.filter) {
			got = append(got, p.Topic)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("%s: retained %v, want %v", tc.filter, got, tc.want)
		}
	}
}

// TestRetain_Disabled checks a server without retained messages: CONNACK
// says Retain Available 0, a retained PUBLISH is refused with 0x9A and a
// will with Will Retain with CONNACK 0x9A [MQTT-3.2.2-13, MQTT-3.2.2-14].
func TestRetain_Disabled(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.DisableRetain = true
	_, addr := newTestBroker(t, o)
	c, ack := connectRaw(t, addr, &packet.Connect{ClientID: "nr", CleanStart: true})
	if !ack.Properties.Present.Has(packet.PropRetainAvailable) || ack.Properties.RetainAvailable != 0 {
		t.Fatal("CONNACK does not say Retain Available 0")
	}
	c.send(&packet.Publish{Topic: "nr", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("x")})
	c.expectDisconnect(packet.RetainNotSupported)

	w := dialRaw(t, addr, packet.V5)
	ack = w.connect(&packet.Connect{ClientID: "nr-will", CleanStart: true, KeepAlive: 60,
		WillFlag: true, WillRetain: true, WillTopic: "nr", WillPayload: []byte("x")})
	if ack.Reason != packet.RetainNotSupported {
		t.Fatalf("CONNACK %v, want 0x9A", ack.Reason)
	}
}
