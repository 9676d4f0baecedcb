package broker

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"gatemq/auth"
	"gatemq/broker/packet"
)

// fakeACL is an Authorizer whose decisions come from deny (nil allows
// everything); it remembers the last user name seen per operation.
type fakeACL struct {
	mu    sync.Mutex
	users map[string]string
	deny  func(op, clientID, username, topic string) bool
}

func (a *fakeACL) check(op, clientID, username, topic string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users == nil {
		a.users = make(map[string]string)
	}
	a.users[op] = username
	return a.deny == nil || !a.deny(op, clientID, username, topic)
}

func (a *fakeACL) lastUser(op string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users[op]
}

func (a *fakeACL) CanPublish(id, user, topic string) bool { return a.check("publish", id, user, topic) }
func (a *fakeACL) CanSubscribe(id, user, filt string) bool {
	return a.check("subscribe", id, user, filt)
}
func (a *fakeACL) CanReceive(id, user, topic string) bool { return a.check("receive", id, user, topic) }
func (a *fakeACL) setDeny(f func(op, id, user, topic string) bool) {
	a.mu.Lock()
	a.deny = f
	a.mu.Unlock()
}

// fakePasswords is an Authenticator with clear-text passwords.
type fakePasswords map[string]string

func (p fakePasswords) CheckContext(_ context.Context, user string, pw []byte) (bool, error) {
	want, ok := p[user]
	return ok && want != "" && want == string(pw), nil
}

var (
	_ Authorizer    = (*auth.ACL)(nil) // checked at compile time
	_ Authenticator = (*auth.Passwords)(nil)
)

// connectWith sends a CONNECT with the given credentials (user "" sends
// none) and returns the CONNACK reason; the client is connected when it
// is Success.
func connectWith(c *rawClient, id, user, pass string) packet.Reason {
	c.t.Helper()
	cp := &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.UsernameFlag, cp.Username = true, user
	}
	if pass != "" {
		cp.PasswordFlag, cp.Password = true, []byte(pass)
	}
	return c.connect(cp).Reason
}

func TestAuth_Connect(t *testing.T) {
	pw := fakePasswords{"alice": "secret"}
	tests := []struct {
		name       string
		policy     *AuthPolicy // nil: no Auth at all
		user, pass string
		want       packet.Reason // v5; 3.x gets the mapped return code
	}{
		{"no policy, anonymous", nil, "", "", packet.Success},
		{"no policy, any user", nil, "bob", "x", packet.Success},
		{"anonymous allowed", &AuthPolicy{AllowAnonymous: true}, "", "", packet.Success},
		{"anonymous refused", &AuthPolicy{}, "", "", packet.NotAuthorized},
		{"user without password file is anonymous: refused", &AuthPolicy{}, "bob", "x", packet.NotAuthorized},
		{"user without password file is anonymous: allowed", &AuthPolicy{AllowAnonymous: true}, "bob", "x", packet.Success},
		{"right password", &AuthPolicy{Passwords: pw}, "alice", "secret", packet.Success},
		{"wrong password", &AuthPolicy{Passwords: pw}, "alice", "guess", packet.BadUserNameOrPassword},
		{"no password", &AuthPolicy{Passwords: pw}, "alice", "", packet.BadUserNameOrPassword},
		{"unknown user", &AuthPolicy{Passwords: pw}, "mallory", "secret", packet.BadUserNameOrPassword},
		{"wrong password, anonymous allowed", &AuthPolicy{Passwords: pw, AllowAnonymous: true}, "alice", "guess", packet.BadUserNameOrPassword},
		{"password file, anonymous refused", &AuthPolicy{Passwords: pw}, "", "", packet.NotAuthorized},
		{"password file, anonymous allowed", &AuthPolicy{Passwords: pw, AllowAnonymous: true}, "", "", packet.Success},
	}
	for _, tc := range tests {
		lo := ListenerOptions{}
		if tc.policy != nil {
			lo.Auth = NewAuth(*tc.policy)
		}
		_, addr := newTestListener(t, testOptions(), lo)
		for _, v := range allVersions {
			t.Run(tc.name+"/"+v.String(), func(t *testing.T) {
				if v != packet.V5 && tc.pass != "" && tc.user == "" {
					t.Skip("3.x has no password without a user name")
				}
				c := dialRaw(t, addr, v)
				got := connectWith(c, "auth-"+v.String(), tc.user, tc.pass)
				if got != tc.want {
					t.Fatalf("CONNACK %v, want %v", got, tc.want)
				}
				if got != packet.Success {
					c.expectClosed()
					return
				}
				c.ping()
			})
		}
	}
}

func TestAuth_ConnackCodes3x(t *testing.T) {
	// The 3.x return codes on the wire: 4 for a bad user name or
	// password, 5 for an anonymous client refused (as Mosquitto).
	_, addr := newTestListener(t, testOptions(), ListenerOptions{Auth: NewAuth(AuthPolicy{Passwords: fakePasswords{"alice": "secret"}})})
	for _, tc := range []struct {
		user, pass string
		code       byte
	}{{"alice", "guess", 4}, {"", "", 5}} {
		c := dialRaw(t, addr, packet.V311)
		cp := &packet.Connect{ProtocolName: "MQTT", Version: packet.V311, ClientID: "codes", CleanStart: true,
			UsernameFlag: tc.user != "", Username: tc.user, PasswordFlag: tc.pass != "", Password: []byte(tc.pass)}
		c.sendRaw(packet.Append(nil, cp, packet.V311))
		raw := make([]byte, 4)
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c.br, raw); err != nil || raw[0] != 0x20 || raw[3] != tc.code {
			t.Fatalf("user %q: CONNACK bytes % x (%v), want return code %d", tc.user, raw, err, tc.code)
		}
	}
}

// aclBroker starts a broker whose listener lets anyone in and asks acl.
func aclBroker(t *testing.T, acl Authorizer) (*Server, string, *Auth) {
	t.Helper()
	a := NewAuth(AuthPolicy{AllowAnonymous: true, ACL: acl})
	s, addr := newTestListener(t, testOptions(), ListenerOptions{Auth: a})
	return s, addr, a
}

func TestAuth_PublishDenied(t *testing.T) {
	acl := &fakeACL{deny: func(op, _, _, topic string) bool {
		return op == "publish" && strings.HasPrefix(topic, "secret/")
	}}
	_, addr, _ := aclBroker(t, acl)
	watcher := dialRaw(t, addr, packet.V311)
	watcher.mustConnect("watcher", true)
	watcher.subscribe(1, packet.Subscription{Filter: "#", QoS: 2})

	for _, v := range allVersions {
		t.Run(v.String(), func(t *testing.T) {
			c := dialRaw(t, addr, v)
			c.mustConnect("pub-"+v.String(), true)
			for qos := byte(0); qos <= 2; qos++ {
				want := packet.NotAuthorized // v5: PUBACK/PUBREC 0x87
				if v != packet.V5 || qos == 0 {
					want = packet.Success // 3.x: acknowledged and dropped [MQTT-3.3.5-2]
				}
				got := c.publishAck(&packet.Publish{Topic: "secret/x", QoS: qos, PacketID: uint16(10 + qos), Payload: []byte("no")})
				if got != want {
					t.Fatalf("QoS %d: reason %v, want %v", qos, got, want)
				}
			}
			c.publishAck(&packet.Publish{Topic: "open/x", QoS: 1, PacketID: 20, Payload: []byte("yes")})
			// Only the allowed message reaches the watcher.
			if p := watcher.recvPublishAck(); p.Topic != "open/x" {
				t.Fatalf("watcher got %q", p.Topic)
			}
			c.ping() // still connected
		})
	}
	watcher.expectNothing(100 * time.Millisecond)
}

func TestAuth_SubscribeDenied(t *testing.T) {
	acl := &fakeACL{deny: func(op, _, _, topic string) bool {
		return op == "subscribe" && topic == "forbidden/#"
	}}
	_, addr, _ := aclBroker(t, acl)
	for _, v := range allVersions {
		t.Run(v.String(), func(t *testing.T) {
			c := dialRaw(t, addr, v)
			c.mustConnect("sub-"+v.String(), true)
			ack := c.subscribe(1, packet.Subscription{Filter: "allowed/+", QoS: 1}, packet.Subscription{Filter: "forbidden/#", QoS: 1})
			// v5: 0x87; 3.x: 0x80, which the codec reads back as UnspecifiedError.
			want := packet.NotAuthorized
			if v != packet.V5 {
				want = packet.UnspecifiedError
			}
			if ack.Reasons[0] != packet.GrantedQoS1 || ack.Reasons[1] != want {
				t.Fatalf("SUBACK %v, want [1 %v]", ack.Reasons, want)
			}
		})
	}
}

func TestAuth_WillChecked(t *testing.T) {
	acl := &fakeACL{deny: func(op, _, _, topic string) bool {
		return op == "publish" && topic == "wills/denied"
	}}
	_, addr, _ := aclBroker(t, acl)
	for _, v := range allVersions {
		c := dialRaw(t, addr, v)
		ack := c.connect(&packet.Connect{ClientID: "will-" + v.String(), CleanStart: true, KeepAlive: 30,
			WillFlag: true, WillTopic: "wills/denied", WillPayload: []byte("x")})
		if ack.Reason != packet.NotAuthorized {
			t.Fatalf("%v: CONNACK %v, want NotAuthorized (3.x: 5)", v, ack.Reason)
		}
	}

	// A will allowed at CONNECT but revoked before it goes out is dropped.
	watcher := dialRaw(t, addr, packet.V311)
	watcher.mustConnect("will-watcher", true)
	watcher.subscribe(1, packet.Subscription{Filter: "wills/#"})
	c := dialRaw(t, addr, packet.V311)
	if ack := c.connect(&packet.Connect{ClientID: "will-revoked", CleanStart: true, KeepAlive: 30,
		WillFlag: true, WillTopic: "wills/later", WillPayload: []byte("x")}); ack.Reason != packet.Success {
		t.Fatalf("CONNACK %v", ack.Reason)
	}
	acl.setDeny(func(op, _, _, topic string) bool { return op == "publish" && strings.HasPrefix(topic, "wills/") })
	c.nc.Close()
	watcher.expectNothing(300 * time.Millisecond)
}

func TestAuth_ReceiveCheckedOnEachDelivery(t *testing.T) {
	acl := &fakeACL{}
	_, addr, _ := aclBroker(t, acl)
	pub := dialRaw(t, addr, packet.V5)
	pub.mustConnect("pub", true)
	pub.publishAck(&packet.Publish{Topic: "plant/retained", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("r")})

	denyPlant := func(op, _, user, topic string) bool {
		return op == "receive" && strings.HasPrefix(topic, "plant/")
	}

	// Retained messages on subscribe are checked.
	acl.setDeny(denyPlant)
	sub := dialRaw(t, addr, packet.V5)
	sub.mustConnect("sub", true)
	sub.subscribe(1, packet.Subscription{Filter: "plant/#", QoS: 1})
	sub.expectNothing(200 * time.Millisecond)

	// Allowed again: live messages arrive.
	acl.setDeny(nil)
	pub.publishAck(&packet.Publish{Topic: "plant/live", QoS: 1, PacketID: 2, Payload: []byte("1")})
	if p := sub.recvPublishAck(); p.Topic != "plant/live" {
		t.Fatalf("got %q", p.Topic)
	}

	// Revoked: the existing subscription stops delivering, QoS 0 to 2.
	acl.setDeny(denyPlant)
	for qos := byte(0); qos <= 2; qos++ {
		pub.publishAck(&packet.Publish{Topic: "plant/live", QoS: qos, PacketID: uint16(3 + qos), Payload: []byte("2")})
	}
	pub.publishAck(&packet.Publish{Topic: "other/x", QoS: 1, PacketID: 9, Payload: []byte("3")})
	sub.subscribe(2, packet.Subscription{Filter: "other/x", QoS: 1})
	pub.publishAck(&packet.Publish{Topic: "other/x", QoS: 1, PacketID: 9, Payload: []byte("3")})
	if p := sub.recvPublishAck(); p.Topic != "other/x" {
		t.Fatalf("got %q after revocation", p.Topic)
	}
}

func TestAuth_QueuedMessagesCheckedOnResume(t *testing.T) {
	acl := &fakeACL{}
	_, addr, _ := aclBroker(t, acl)
	sub := dialRaw(t, addr, packet.V311)
	sub.mustConnect("durable", false)
	sub.subscribe(1, packet.Subscription{Filter: "q/#", QoS: 1})
	sub.disconnect()

	pub := dialRaw(t, addr, packet.V311)
	pub.mustConnect("pub", true)
	pub.publishAck(&packet.Publish{Topic: "q/denied", QoS: 1, PacketID: 1, Payload: []byte("x")})
	pub.publishAck(&packet.Publish{Topic: "q/allowed", QoS: 1, PacketID: 2, Payload: []byte("y")})
	acl.setDeny(func(op, _, _, topic string) bool { return op == "receive" && topic == "q/denied" })

	sub = dialRaw(t, addr, packet.V311)
	if ack := sub.mustConnect("durable", false); !ack.SessionPresent {
		t.Fatal("session not present")
	}
	if p := sub.recvPublishAck(); p.Topic != "q/allowed" {
		t.Fatalf("got %q, want only q/allowed", p.Topic)
	}
	sub.expectNothing(100 * time.Millisecond)
}

func TestAuth_SysTopicsStillPublished(t *testing.T) {
	// An ACL that lets nobody publish anything does not stop the
	// broker's own $SYS messages; reading them needs read access.
	acl := &fakeACL{deny: func(op, _, _, topic string) bool { return op == "publish" }}
	o := testOptions()
	o.SysInterval = 50 * time.Millisecond
	a := NewAuth(AuthPolicy{AllowAnonymous: true, ACL: acl})
	_, addr := newTestListener(t, o, ListenerOptions{Auth: a})
	c := dialRaw(t, addr, packet.V311)
	c.mustConnect("sys", true)
	c.subscribe(1, packet.Subscription{Filter: "$SYS/broker/uptime"})
	if p := c.recvPublish(); p.Topic != "$SYS/broker/uptime" {
		t.Fatalf("got %q", p.Topic)
	}
}

// TestAuth_RealFiles runs the broker with gatemq/auth's password file
// and ACL: %c and %u patterns, user sections, anonymous rules, and a
// reload that revokes a read permission.
func TestAuth_RealFiles(t *testing.T) {
	hash, err := auth.HashPassword([]byte("pw-alice"))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.ParsePasswords(strings.NewReader("alice:"+hash+"\n"), "passwords")
	if err != nil {
		t.Fatal(err)
	}
	parseACL := func(s string) *auth.ACL {
		t.Helper()
		a, err := auth.ParseACL(strings.NewReader(s), "acl")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	const rules = `
topic read public/#
pattern readwrite devices/%c/#
pattern read users/%u/#
user alice
topic readwrite alarms/#
`
	a := NewAuth(AuthPolicy{AllowAnonymous: true, Passwords: pw, ACL: parseACL(rules)})
	_, addr := newTestListener(t, testOptions(), ListenerOptions{Auth: a})

	alice := dialRaw(t, addr, packet.V5)
	if r := connectWith(alice, "dev1", "alice", "pw-alice"); r != packet.Success {
		t.Fatalf("alice: %v", r)
	}
	anon := dialRaw(t, addr, packet.V5)
	if r := connectWith(anon, "dev2", "", ""); r != packet.Success {
		t.Fatalf("anonymous: %v", r)
	}
	subs := func(c *rawClient, filters ...string) []packet.Reason {
		t.Helper()
		var ss []packet.Subscription
		for _, f := range filters {
			ss = append(ss, packet.Subscription{Filter: f, QoS: 1})
		}
		return c.subscribe(1, ss...).Reasons
	}
	ok, no := packet.GrantedQoS1, packet.NotAuthorized
	check := func(who string, got []packet.Reason, want ...packet.Reason) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: SUBACK %v, want %v", who, got, want)
		}
	}
	check("alice", subs(alice, "devices/dev1/#", "devices/dev2/#", "users/alice/#", "users/bob/#", "alarms/#", "public/x"),
		ok, no, ok, no, ok, no) // public/# is for anonymous clients only
	check("anonymous", subs(anon, "devices/dev2/#", "devices/dev1/#", "users/alice/#", "alarms/#", "public/x"),
		ok, no, no, no, ok)

	if r := alice.publishAck(&packet.Publish{Topic: "devices/dev2/cmd", QoS: 1, PacketID: 5}); r != no {
		t.Errorf("alice publishing to dev2: %v", r)
	}
	if r := anon.publishAck(&packet.Publish{Topic: "alarms/fire", QoS: 1, PacketID: 5}); r != no {
		t.Errorf("anonymous publishing to alarms: %v", r)
	}
	// %c: each device talks to itself only.
	if r, p := alice.publishEcho(&packet.Publish{Topic: "devices/dev1/state", QoS: 1, PacketID: 6, Payload: []byte("on")}); r != packet.Success || p.Topic != "devices/dev1/state" {
		t.Errorf("alice publishing to dev1: %v, echo %q", r, p.Topic)
	}
	if r, p := alice.publishEcho(&packet.Publish{Topic: "alarms/fire", QoS: 1, PacketID: 7, Payload: []byte("!")}); r != packet.Success || p.Topic != "alarms/fire" {
		t.Errorf("alice publishing to alarms: %v, echo %q", r, p.Topic)
	}

	// Reload without alice's read on alarms: her subscription stays but
	// delivers nothing.
	a.Set(AuthPolicy{AllowAnonymous: true, Passwords: pw, ACL: parseACL(strings.Replace(rules, "topic readwrite alarms/#", "topic write alarms/#", 1))})
	if r := alice.publishAck(&packet.Publish{Topic: "alarms/fire", QoS: 1, PacketID: 8, Payload: []byte("!!")}); r.Failed() {
		t.Errorf("alice publishing to alarms after reload: %v", r)
	}
	alice.expectNothing(200 * time.Millisecond)

	// A client ID with wildcards gets nothing from %c.
	wild := dialRaw(t, addr, packet.V5)
	if r := connectWith(wild, "#", "", ""); r != packet.Success {
		t.Fatalf("client #: %v", r)
	}
	check("client #", subs(wild, "devices/#", "devices/+/#"), no, no)
}

// publishEcho publishes a QoS 1 message the client is itself subscribed
// to and returns the PUBACK reason and the echoed PUBLISH (acknowledged),
// which may come in either order.
func (c *rawClient) publishEcho(p *packet.Publish) (packet.Reason, *packet.Publish) {
	c.t.Helper()
	c.send(p)
	var (
		reason packet.Reason
		acked  bool
		echo   *packet.Publish
	)
	for !acked || echo == nil {
		switch pk := c.recv().(type) {
		case *packet.Puback:
			if pk.PacketID != p.PacketID {
				c.t.Fatalf("PUBACK %d, want %d", pk.PacketID, p.PacketID)
			}
			reason, acked = pk.Reason, true
		case *packet.Publish:
			echo = pk
			if pk.QoS == 1 {
				c.send(&packet.Puback{PacketID: pk.PacketID})
			}
		default:
			c.t.Fatalf("unexpected %T %+v", pk, pk)
		}
	}
	return reason, echo
}
