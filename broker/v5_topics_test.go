package broker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
	"gatemq/session"
)

// TestTopics_Wildcards checks topic filter matching, including that a
// filter starting with a wildcard does not match a topic starting with
// "$" [MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.7.2-1].
func TestTopics_Wildcards(t *testing.T) {
	t.Parallel()
	cases := []struct {
		filter, topic string
		match         bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b", false},
		{"A/b", "a/b", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/c/d", false},
		{"a/+/c", "a//c", true},
		{"a/+", "a/", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"/+", "/a", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"+/#", "a", true},
		{"#", "$data/x", false},
		{"+/x", "$data/x", false},
		{"+/#", "$data/x", false},
		{"$data/#", "$data/x", true},
		{"$data/+", "$data/x", true},
		{"#", "$SYS/broker/x", false},
		{"+/broker/x", "$SYS/broker/x", false},
		{"$SYS/#", "$SYS/broker/x", true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s on %s", tc.filter, tc.topic), func(t *testing.T) {
			t.Parallel()
			srv, addr := newTestBroker(t, testOptions())
			sub := connectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
			sub.subscribe(tc.filter)
			if strings.HasPrefix(tc.topic, "$SYS/") {
				// Only the broker publishes $SYS topics.
				srv.publish(&session.Message{Topic: tc.topic, Payload: []byte("m")})
			} else {
				pub := connectV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
				pub.publish(&paho.Publish{Topic: tc.topic, QoS: 1, Payload: []byte("m")})
			}
			// next returns the next message within d, or nil, leaving out
			// the broker's client events, which "$SYS/#" also matches
			// (published off the connect path, before or after the
			// subscription).
			next := func(d time.Duration) *paho.Publish {
				timeout := time.After(d)
				for {
					select {
					case p := <-sub.msgs:
						if strings.HasPrefix(p.Topic, "$SYS/brokers/") {
							continue
						}
						return p
					case <-timeout:
						return nil
					}
				}
			}
			if !tc.match {
				if p := next(100 * time.Millisecond); p != nil {
					t.Fatalf("unexpected message %q", p.Topic)
				}
				return
			}
			if p := next(5 * time.Second); p == nil || p.Topic != tc.topic {
				t.Fatalf("got %v, want a message on %q", p, tc.topic)
			}
			if p := next(20 * time.Millisecond); p != nil {
				t.Fatalf("unexpected message %q", p.Topic)
			}
		})
	}
}

// TestTopics_InvalidFilter checks that each invalid filter of a SUBSCRIBE
// is refused in the SUBACK (0x8F, 0x80 in 3.1.1) while the valid ones are
// granted [MQTT-4.7.1-1, MQTT-4.8.2-1].
func TestTopics_InvalidFilter(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	filters := []string{"a/#/b", "a+", "a/b#", "$share/g", "$share//f", "$share/g+/f", "ok/+"}
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, v)
			c.mustConnect("invalid-"+v.String(), true)
			var subs []packet.Subscription
			for _, f := range filters {
				subs = append(subs, packet.Subscription{Filter: f, QoS: 1})
			}
			ack := c.subscribe(1, subs...)
			bad := packet.TopicFilterInvalid
			if v != packet.V5 {
				bad = packet.UnspecifiedError
			}
			want := slices.Repeat([]packet.Reason{bad}, len(filters)-1)
			want = append(want, packet.GrantedQoS1)
			if !slices.Equal(ack.Reasons, want) {
				t.Fatalf("SUBACK %v, want %v", ack.Reasons, want)
			}
			c.send(&packet.Publish{Topic: "ok/x", Payload: []byte("m")})
			if p := c.recvPublish(); p.Topic != "ok/x" {
				t.Fatalf("got %q", p.Topic)
			}
		})
	}
}

// TestTopics_SharedRoundRobin checks that a shared subscription delivers
// each message to one member of the group, in turn, for v5 and 3.1.1
// subscribers, while an ordinary subscription gets every message
// [MQTT-4.8.2].
func TestTopics_SharedRoundRobin(t *testing.T) {
	t.Parallel()
	const n = 10
	t.Run("5.0", func(t *testing.T) {
		t.Parallel()
		_, addr := newTestBroker(t, testOptions())
		a := connectV5(t, addr, &paho.Connect{ClientID: "member-a", CleanStart: true})
		b := connectV5(t, addr, &paho.Connect{ClientID: "member-b", CleanStart: true})
		all := connectV5(t, addr, &paho.Connect{ClientID: "all", CleanStart: true})
		a.subscribe("$share/g/shared/+")
		b.subscribe("$share/g/shared/+")
		all.subscribe("shared/+")
		pub := connectV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
		for i := range n {
			pub.publish(&paho.Publish{Topic: "shared/x", QoS: 1, Payload: []byte{byte(i)}})
		}
		for range n {
			all.recv()
		}
		var got [2]int
		for range n {
			select {
			case <-a.msgs:
				got[0]++
			case <-b.msgs:
				got[1]++
			case <-time.After(5 * time.Second):
				t.Fatalf("timed out with %v", got)
			}
		}
		a.expectNothing(50 * time.Millisecond)
		b.expectNothing(0)
		if got != [2]int{n / 2, n / 2} {
			t.Fatalf("members got %v, want 5 each", got)
		}
	})
	t.Run("3.1.1", func(t *testing.T) {
		t.Parallel()
		_, addr := newTestBroker(t, testOptions())
		var members [2]*rawClient
		for i := range members {
			members[i] = dialRaw(t, addr, packet.V311)
			members[i].mustConnect(fmt.Sprintf("member-%d", i), true)
			if ack := members[i].subscribe(1, packet.Subscription{Filter: "$share/g/shared/#", QoS: 1}); ack.Reasons[0] != packet.GrantedQoS1 {
				t.Fatalf("SUBACK %v", ack.Reasons)
			}
		}
		pub := dialRaw(t, addr, packet.V311)
		pub.mustConnect("pub", true)
		for i := range n {
			pub.publishAck(&packet.Publish{Topic: "shared/x", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
		}
		for i, m := range members {
			for range n / 2 {
				m.recvPublishAck()
			}
			if pk, err := m.tryRecv(50 * time.Millisecond); err == nil {
				t.Fatalf("member %d got more than %d: %+v", i, n/2, pk)
			}
		}
	})
}

// TestTopics_NoLocal checks that a no-local subscription gets messages
// from other clients but not the subscriber's own [MQTT-3.8.3-3].
func TestTopics_NoLocal(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	c := connectV5(t, addr, &paho.Connect{ClientID: "nl", CleanStart: true})
	c.subscribeWith(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "nl/local", QoS: 1, NoLocal: true},
		{Topic: "nl/echo", QoS: 1},
	}})
	c.publish(&paho.Publish{Topic: "nl/local", QoS: 1, Payload: []byte("own")})
	c.publish(&paho.Publish{Topic: "nl/echo", QoS: 1, Payload: []byte("echo")})
	if p := c.recv(); p.Topic != "nl/echo" {
		t.Fatalf("got own message on %q", p.Topic)
	}
	c.expectNothing(100 * time.Millisecond)

	other := connectV5(t, addr, &paho.Connect{ClientID: "nl-other", CleanStart: true})
	other.publish(&paho.Publish{Topic: "nl/local", QoS: 1, Payload: []byte("other")})
	if p := c.recv(); string(p.Payload) != "other" {
		t.Fatalf("got %q", p.Payload)
	}

	// Overlapping with an ordinary subscription, the own message comes
	// once, as that subscription has it, whichever matches first.
	for _, nlFirst := range []bool{true, false} {
		r, _ := connectRaw(t, addr, &packet.Connect{ClientID: fmt.Sprint("nl-raw-", nlFirst), CleanStart: true})
		topic := fmt.Sprintf("nl/%v/x", nlFirst)
		for i, f := range []string{fmt.Sprintf("nl/%v/#", nlFirst), fmt.Sprintf("nl/%v/+", nlFirst)} {
			sp := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: f, QoS: byte(2 - i),
				NoLocal: (i == 0) == nlFirst}}}
			sp.Properties.SubscriptionIDs = []uint32{uint32(i + 1)}
			r.send(sp)
			if _, ok := r.recv().(*packet.Suback); !ok {
				t.Fatal("want SUBACK")
			}
		}
		want := packet.Publish{QoS: 1, Topic: topic}
		want.Properties.SubscriptionIDs = []uint32{2}
		if !nlFirst {
			want.QoS, want.Properties.SubscriptionIDs = 2, []uint32{1}
		}
		p := r.exchange(1, &packet.Publish{Topic: topic, QoS: 2, PacketID: 1, Payload: []byte("own")})[0]
		if p.QoS != want.QoS || !slices.Equal(p.Properties.SubscriptionIDs, want.Properties.SubscriptionIDs) {
			t.Fatalf("no local first %v: got QoS %d identifiers %v, want QoS %d identifiers %v", nlFirst,
				p.QoS, p.Properties.SubscriptionIDs, want.QoS, want.Properties.SubscriptionIDs)
		}
		r.expectNothing(100 * time.Millisecond)
	}
}

// TestTopics_RetainAsPublished checks the RETAIN flag of messages
// forwarded to existing subscriptions: kept with Retain As Published,
// cleared without [MQTT-3.3.1-12, MQTT-3.3.1-13].
func TestTopics_RetainAsPublished(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	for _, rap := range []bool{false, true} {
		t.Run(fmt.Sprint("rap ", rap), func(t *testing.T) {
			t.Parallel()
			topic := fmt.Sprint("rap/", rap)
			sub := connectV5(t, addr, &paho.Connect{ClientID: "sub-" + topic, CleanStart: true})
			sub.subscribeWith(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1, RetainAsPublished: rap}}})
			pub := connectV5(t, addr, &paho.Connect{ClientID: "pub-" + topic, CleanStart: true})
			pub.publish(&paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("r")})
			pub.publish(&paho.Publish{Topic: topic, QoS: 1, Payload: []byte("n")})
			if p := sub.recv(); p.Retain != rap {
				t.Fatalf("retained message forwarded with RETAIN %v, want %v", p.Retain, rap)
			}
			if p := sub.recv(); p.Retain {
				t.Fatal("non-retained message forwarded with RETAIN 1")
			}
		})
	}
}

// TestTopics_RetainHandling checks when retained messages are sent at
// subscribe time: always (0), for a new subscription only (1), never (2)
// [MQTT-3.3.1-9, MQTT-3.3.1-10, MQTT-3.3.1-11].
func TestTopics_RetainHandling(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rh              byte
		onNew, onRepeat bool
	}{
		{0, true, true},
		{1, true, false},
		{2, false, false},
	}
	_, addr := newTestBroker(t, testOptions())
	for _, tc := range cases {
		t.Run(fmt.Sprint("retain handling ", tc.rh), func(t *testing.T) {
			t.Parallel()
			topic := fmt.Sprintf("rh/%d/t", tc.rh)
			pub := connectV5(t, addr, &paho.Connect{ClientID: "pub-" + topic, CleanStart: true})
			pub.publish(&paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("kept")})
			c := connectV5(t, addr, &paho.Connect{ClientID: "sub-" + topic, CleanStart: true})
			s := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: fmt.Sprintf("rh/%d/+", tc.rh), QoS: 1, RetainHandling: tc.rh}}}
			for _, want := range []bool{tc.onNew, tc.onRepeat} {
				c.subscribeWith(s)
				if !want {
					c.expectNothing(100 * time.Millisecond)
					continue
				}
				if p := c.recv(); string(p.Payload) != "kept" || !p.Retain {
					t.Fatalf("got %q retain %v, want the retained message", p.Payload, p.Retain)
				}
			}
			// Retain handling does not affect live messages.
			pub.publish(&paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("live")})
			if p := c.recv(); string(p.Payload) != "live" || p.Retain {
				t.Fatalf("got %q retain %v, want the live message without RETAIN", p.Payload, p.Retain)
			}
		})
	}
}

// TestTopics_SubscriptionIdentifiers checks that a message carries the
// identifier of the subscription it matched, and that overlapping
// subscriptions of one client give one delivery with every identifier
// and the greatest QoS [MQTT-3.3.4-2, MQTT-3.3.4-3, MQTT-3.3.4-5].
func TestTopics_SubscriptionIdentifiers(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "sid-pub", CleanStart: true})

	t.Run("single", func(t *testing.T) {
		c := connectV5(t, addr, &paho.Connect{ClientID: "sid-paho", CleanStart: true})
		id := 4242
		c.subscribeWith(&paho.Subscribe{
			Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &id},
			Subscriptions: []paho.SubscribeOptions{{Topic: "sid/one", QoS: 1}},
		})
		c.subscribe("sid/none")
		pub.publish(&paho.Publish{Topic: "sid/one", QoS: 1, Payload: []byte("x")})
		p := c.recv()
		if p.Properties.SubscriptionIdentifier == nil || *p.Properties.SubscriptionIdentifier != id {
			t.Fatalf("subscription identifier %v, want %d", p.Properties.SubscriptionIdentifier, id)
		}
		pub.publish(&paho.Publish{Topic: "sid/none", QoS: 1, Payload: []byte("x")})
		if p := c.recv(); p.Properties.SubscriptionIdentifier != nil {
			t.Fatalf("subscription identifier %d on a subscription without one", *p.Properties.SubscriptionIdentifier)
		}

		// Retained messages sent at subscribe time carry it too.
		pub.publish(&paho.Publish{Topic: "sidr/retained", QoS: 1, Retain: true, Payload: []byte("r")})
		id = 7
		c.subscribeWith(&paho.Subscribe{
			Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &id},
			Subscriptions: []paho.SubscribeOptions{{Topic: "sidr/retained", QoS: 1}},
		})
		if p := c.recv(); !p.Retain || p.Properties.SubscriptionIdentifier == nil || *p.Properties.SubscriptionIdentifier != id {
			t.Fatalf("retained message with subscription identifier %v, want %d", p.Properties.SubscriptionIdentifier, id)
		}
	})
	t.Run("overlapping", func(t *testing.T) {
		c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "sid-raw", CleanStart: true})
		for _, s := range []struct {
			filter string
			qos    byte
			id     uint32
		}{{"sid/+/x", 0, 1}, {"sid/#", 2, 300}, {"sid/o/x", 1, 0}} {
			sp := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: s.filter, QoS: s.qos}}}
			if s.id != 0 {
				sp.Properties.SubscriptionIDs = []uint32{s.id}
				sp.Properties.Present.Add(packet.PropSubscriptionID)
			}
			c.send(sp)
			if _, ok := c.recv().(*packet.Suback); !ok {
				t.Fatal("want SUBACK")
			}
		}
		pub.publish(&paho.Publish{Topic: "sid/o/x", QoS: 2, Payload: []byte("x")})
		p := c.recvPublishAck()
		ids := slices.Sorted(slices.Values(p.Properties.SubscriptionIDs))
		if p.QoS != 2 || !slices.Equal(ids, []uint32{1, 300}) {
			t.Fatalf("got QoS %d identifiers %v, want QoS 2 with 1 and 300", p.QoS, p.Properties.SubscriptionIDs)
		}
		c.expectNothing(100 * time.Millisecond)
	})
}

// TestTopics_SubscriptionReplaced checks that subscribing again to a
// filter replaces the subscription's options rather than adding one
// [MQTT-3.8.4-3], and that UNSUBSCRIBE ends it, with 0x11 for a filter
// that had none.
func TestTopics_SubscriptionReplaced(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "sr-pub", CleanStart: true})
	c := connectV5(t, addr, &paho.Connect{ClientID: "sr", CleanStart: true})
	for _, qos := range []byte{2, 0, 1} {
		c.subscribeWith(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sr/+", QoS: qos}}})
		pub.publish(&paho.Publish{Topic: "sr/x", QoS: 2, Payload: []byte{qos}})
		if p := c.recv(); p.QoS != qos {
			t.Fatalf("delivered with QoS %d after subscribing with %d", p.QoS, qos)
		}
		c.expectNothing(50 * time.Millisecond)
	}
	ua, err := c.Unsubscribe(t.Context(), &paho.Unsubscribe{Topics: []string{"sr/+", "sr/none"}})
	if ua == nil || len(ua.Reasons) != 2 || ua.Reasons[0] != 0 || ua.Reasons[1] != byte(packet.NoSubscriptionExisted) {
		t.Fatalf("UNSUBACK %+v (%v), want [0x00 0x11]", ua, err)
	}
	pub.publish(&paho.Publish{Topic: "sr/x", QoS: 1, Payload: []byte("after")})
	c.expectNothing(100 * time.Millisecond)
}

// TestTopics_OverlappingFanOut checks the merging of overlapping
// subscriptions when a message has many subscribers.
func TestTopics_OverlappingFanOut(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	var others []*v5Client
	for i := range 20 {
		o := connectV5(t, addr, &paho.Connect{ClientID: fmt.Sprint("fan-", i), CleanStart: true})
		o.subscribe("fan/#")
		others = append(others, o)
	}
	c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "fan-raw", CleanStart: true})
	for i, f := range []string{"fan/+", "fan/#", "+/x"} {
		sp := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: f, QoS: byte(i % 2)}}}
		sp.Properties.SubscriptionIDs = []uint32{uint32(i + 1)}
		c.send(sp)
		if _, ok := c.recv().(*packet.Suback); !ok {
			t.Fatal("want SUBACK")
		}
	}
	pub := connectV5(t, addr, &paho.Connect{ClientID: "fan-pub", CleanStart: true})
	pub.publish(&paho.Publish{Topic: "fan/x", QoS: 1, Payload: []byte("x")})
	p := c.recvPublishAck()
	if ids := slices.Sorted(slices.Values(p.Properties.SubscriptionIDs)); p.QoS != 1 || !slices.Equal(ids, []uint32{1, 2, 3}) {
		t.Fatalf("got QoS %d identifiers %v, want QoS 1 with 1, 2 and 3", p.QoS, p.Properties.SubscriptionIDs)
	}
	c.expectNothing(100 * time.Millisecond)
	for _, o := range others {
		o.recv()
		o.expectNothing(0)
	}
}
