package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// TestSession_CleanStartAndResume checks Session Present and that a
// resumed session keeps its subscriptions [MQTT-3.1.2-4, MQTT-3.1.2-5,
// MQTT-3.2.2-2, MQTT-3.2.2-3].
func TestSession_CleanStartAndResume(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		firstExpiry uint32 // Session Expiry Interval of the first connection
		firstClean  bool
		secondClean bool
		wantPresent bool // also: the subscription survived
	}{
		{"resume kept session", 60, true, false, true},
		{"resume after a resumed first connection", 60, false, false, true},
		{"clean start discards session", 60, true, true, false},
		{"expiry 0 ends session with connection", 0, true, false, false},
	}
	_, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "resume-pub", CleanStart: true})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("resume-%d", i)
			topic := "resume/" + id
			cp := &paho.Connect{ClientID: id, CleanStart: tc.firstClean,
				Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(tc.firstExpiry)}}
			c := connectV5(t, addr, cp)
			if c.connack.SessionPresent {
				t.Fatal("session present on the first connection")
			}
			c.subscribe(topic)
			c.disconnect(0)

			c = connectV5(t, addr, &paho.Connect{ClientID: id, CleanStart: tc.secondClean,
				Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}})
			if c.connack.SessionPresent != tc.wantPresent {
				t.Fatalf("session present %v, want %v", c.connack.SessionPresent, tc.wantPresent)
			}
			pub.publish(&paho.Publish{Topic: topic, QoS: 1, Payload: []byte("x")})
			if tc.wantPresent {
				if p := c.recv(); p.Topic != topic {
					t.Fatalf("got %q", p.Topic)
				}
			} else {
				c.expectNothing(100 * time.Millisecond)
			}
		})
	}
}

// TestSession_ExpiryInterval checks that a session with a Session Expiry
// Interval outlives its connection, queues QoS 1 messages meanwhile and is
// discarded once the interval has passed [MQTT-3.1.2-23].
func TestSession_ExpiryInterval(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	const id = "expiring"
	props := func() *paho.ConnectProperties {
		return &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(1)}
	}
	c := connectV5(t, addr, &paho.Connect{ClientID: id, CleanStart: true, Properties: props()})
	c.subscribe("exp/t")
	c.disconnect(0)

	// Kept after the disconnect, with the message published meanwhile.
	pub := connectV5(t, addr, &paho.Connect{ClientID: "expiring-pub", CleanStart: true})
	pub.publish(&paho.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("queued")})
	c = connectV5(t, addr, &paho.Connect{ClientID: id, Properties: props()})
	if !c.connack.SessionPresent {
		t.Fatal("session not present right after disconnect")
	}
	if p := c.recv(); string(p.Payload) != "queued" {
		t.Fatalf("got %q, want the message queued while offline", p.Payload)
	}

	// Gone after the interval.
	c.drop()
	dropped := time.Now()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if s.sessions.Get(id) != nil {
			return fmt.Errorf("session still there after %v", time.Since(dropped))
		}
		return nil
	})
	if d := time.Since(dropped); d < 900*time.Millisecond {
		t.Fatalf("session expired after %v, want 1s", d)
	}
	c = connectV5(t, addr, &paho.Connect{ClientID: id, Properties: props()})
	if c.connack.SessionPresent {
		t.Fatal("session present after expiry")
	}
	pub.publish(&paho.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("late")})
	c.expectNothing(100 * time.Millisecond)
}

// TestSession_Takeover checks that a second connection with a client ID in
// use gets the session and that the first one is sent DISCONNECT 0x8E and
// closed [MQTT-3.1.4-3].
func TestSession_Takeover(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		clean       bool
		wantPresent bool
	}{
		{"clean start", true, false},
		{"resume", false, true},
	}
	_, addr := newTestBroker(t, testOptions())
	pub := connectV5(t, addr, &paho.Connect{ClientID: "takeover-pub", CleanStart: true})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("takeover-%d", i)
			topic := "takeover/" + id
			props := &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}
			old := connectV5(t, addr, &paho.Connect{ClientID: id, CleanStart: true, Properties: props})
			old.subscribe(topic)

			c := connectV5(t, addr, &paho.Connect{ClientID: id, CleanStart: tc.clean, Properties: props})
			if d := old.recvDisconnect(); d.ReasonCode != byte(packet.SessionTakenOver) {
				t.Fatalf("old connection got DISCONNECT 0x%02x, want 0x8E", d.ReasonCode)
			}
			select {
			case <-old.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("old connection not closed")
			}
			if c.connack.SessionPresent != tc.wantPresent {
				t.Fatalf("session present %v, want %v", c.connack.SessionPresent, tc.wantPresent)
			}
			if !tc.wantPresent {
				c.subscribe(topic)
			}
			pub.publish(&paho.Publish{Topic: topic, QoS: 1, Payload: []byte("new")})
			if p := c.recv(); string(p.Payload) != "new" {
				t.Fatalf("got %q", p.Payload)
			}
			old.expectNothing(50 * time.Millisecond)
		})
	}
}

// TestSession_AssignedClientID checks that a client with an empty client
// ID is given a unique one in CONNACK and can resume its session with it
// [MQTT-3.1.3-6, MQTT-3.1.3-7, MQTT-3.2.2-16].
func TestSession_AssignedClientID(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	props := func() *paho.ConnectProperties {
		return &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}
	}
	a := connectV5(t, addr, &paho.Connect{CleanStart: true, Properties: props()})
	b := connectV5(t, addr, &paho.Connect{CleanStart: true, Properties: props()})
	idA, idB := a.connack.Properties.AssignedClientID, b.connack.Properties.AssignedClientID
	if idA == "" || idB == "" || idA == idB {
		t.Fatalf("assigned client IDs %q and %q, want two different ones", idA, idB)
	}
	a.subscribe("assigned/t")
	a.disconnect(0)
	b.disconnect(0)

	a = connectV5(t, addr, &paho.Connect{ClientID: idA, Properties: props()})
	if !a.connack.SessionPresent {
		t.Fatal("session with the assigned ID not present")
	}
	if got := a.connack.Properties.AssignedClientID; got != "" {
		t.Fatalf("assigned %q to a client that sent an ID", got)
	}
	pub := connectV5(t, addr, &paho.Connect{ClientID: "assigned-pub", CleanStart: true})
	pub.publish(&paho.Publish{Topic: "assigned/t", QoS: 1, Payload: []byte("x")})
	a.recv()
}

// TestSession_ExpiryAtDisconnect checks the Session Expiry Interval of a
// DISCONNECT: it replaces the one from CONNECT, except that a session
// that CONNECT said ends with the connection cannot be extended
// [MQTT-3.14.2-2].
func TestSession_ExpiryAtDisconnect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		connect        uint32
		disconnect     uint32
		wantReason     packet.Reason // the server's DISCONNECT, if any
		wantPresent    bool
		wantExpiry     uint32
		waitPastExpiry bool // reconnect after the CONNECT interval has passed
	}{
		{name: "shortened to 0 ends session", connect: 60, disconnect: 0},
		{name: "lengthened outlives CONNECT interval", connect: 1, disconnect: 3600,
			wantPresent: true, wantExpiry: 3600, waitPastExpiry: true},
		{name: "0 then 0 is allowed", connect: 0, disconnect: 0},
		{name: "0 then non-zero is a protocol error", connect: 0, disconnect: 10,
			wantReason: packet.ProtocolError},
	}
	s, addr := newTestBroker(t, testOptions())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("disc-expiry-%d", i)
			c, _ := connectRaw(t, addr, &packet.Connect{ClientID: id, CleanStart: true,
				Properties: withExpiry(tc.connect)})
			c.send(&packet.Disconnect{Properties: withExpiry(tc.disconnect)})
			got := c.expectClosed()
			if tc.wantReason != 0 {
				if len(got) != 1 {
					t.Fatalf("got %v, want DISCONNECT %v", got, tc.wantReason)
				}
				if d, ok := got[0].(*packet.Disconnect); !ok || d.Reason != tc.wantReason {
					t.Fatalf("got %+v, want DISCONNECT %v", got[0], tc.wantReason)
				}
			} else if len(got) != 0 {
				t.Fatalf("server sent %v after a client DISCONNECT", got)
			}
			if tc.wantPresent {
				testkit.WaitFor(t, 5*time.Second, func() error {
					sess := s.sessions.Get(id)
					if sess == nil {
						return fmt.Errorf("no session %q", id)
					}
					// Read through the accessors: printing the session
					// itself would race with the broker.
					if online, exp := sess.Owner() != nil, sess.Expiry(); online || exp != tc.wantExpiry {
						return fmt.Errorf("session online %v, expiry %d; want offline with expiry %d", online, exp, tc.wantExpiry)
					}
					return nil
				})
			}
			if tc.waitPastExpiry {
				// Let the CONNECT interval pass: the session must not end.
				time.Sleep(time.Duration(tc.connect)*time.Second + 300*time.Millisecond)
			}
			c, ack := connectRaw(t, addr, &packet.Connect{ClientID: id, Properties: withExpiry(0)})
			if ack.SessionPresent != tc.wantPresent {
				t.Fatalf("session present %v, want %v", ack.SessionPresent, tc.wantPresent)
			}
			c.send(&packet.Disconnect{})
		})
	}
}

// TestSession_QueuedDeliveredOnceOnResume checks that the messages queued
// for an offline session are each sent once, without DUP, when it resumes
// [MQTT-4.3.2-1, MQTT-4.3.3-1].
func TestSession_QueuedDeliveredOnceOnResume(t *testing.T) {
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	for i := range 10 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprint("queued-", i)
			topic := "queued/" + id
			sub, _ := connectRaw(t, addr, &packet.Connect{ClientID: id, CleanStart: true, Properties: withExpiry(60)})
			sub.subscribe(1, packet.Subscription{Filter: topic, QoS: 2})
			sub.send(&packet.Disconnect{})
			sub.expectClosed()
			testkit.WaitFor(t, 5*time.Second, func() error {
				if sess := s.sessions.Get(id); sess == nil || sess.Online() {
					return fmt.Errorf("session not offline")
				}
				return nil
			})
			pub := connectV5(t, addr, &paho.Connect{ClientID: "pub-" + id, CleanStart: true})
			const n = 6
			for j := range n {
				pub.publish(&paho.Publish{Topic: topic, QoS: byte(1 + j%2), Payload: []byte{byte(j)}})
			}
			sub, _ = connectRaw(t, addr, &packet.Connect{ClientID: id, Properties: withExpiry(60)})
			got := sub.recvPublishes(n)
			for j, p := range got {
				if p.Dup || p.Payload[0] != byte(j) {
					t.Fatalf("message %d: %+v, want payload %d without DUP", j, p, j)
				}
			}
			sub.expectNothing(100 * time.Millisecond)
		})
	}
}

// TestSession_TakeoverRace connects two clients with one client ID at
// once: whichever connects first is taken over, and still gets its
// CONNACK followed by DISCONNECT 0x8E, however close the two are.
func TestSession_TakeoverRace(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	for i := range 20 {
		id := fmt.Sprint("race-", i)
		var cs [2]*rawClient
		for j := range cs {
			cs[j] = dialRaw(t, addr, packet.V5)
		}
		for _, c := range cs {
			c.send(&packet.Connect{ProtocolName: "MQTT", Version: packet.V5, ClientID: id, CleanStart: true, KeepAlive: 60})
		}
		var got [2][]packet.Packet
		closed := -1
		for j, c := range cs {
			if ack, ok := c.recv().(*packet.Connack); !ok || ack.Reason != packet.Success {
				t.Fatalf("%d: want CONNACK, got %+v", j, ack)
			}
			pk, err := c.tryRecv(100 * time.Millisecond)
			if err == nil {
				got[j] = append(got[j], pk)
				pk, err = c.tryRecv(5 * time.Second)
			}
			if isClosed(err) {
				closed = j
			} else if pk != nil {
				got[j] = append(got[j], pk)
			}
		}
		if closed < 0 {
			t.Fatalf("%d: neither connection closed: %v", i, got)
		}
		if d, ok := func() (*packet.Disconnect, bool) {
			if len(got[closed]) != 1 {
				return nil, false
			}
			d, ok := got[closed][0].(*packet.Disconnect)
			return d, ok
		}(); !ok || d.Reason != packet.SessionTakenOver {
			t.Fatalf("%d: connection %d closed after %v, want DISCONNECT 0x8E", i, closed, got[closed])
		}
		cs[1-closed].ping()
		cs[1-closed].send(&packet.Disconnect{})
	}
}
