package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/auth"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// startPresets starts a broker with a store in a new directory, the
// preset rules and listener options given, logging at debug level into
// the returned buffer.
func startPresets(t *testing.T, rules []PresetRule, lopts ListenerOptions) (*durableBroker, *testkit.Buffer) {
	t.Helper()
	logs := &testkit.Buffer{}
	o := testOptions()
	o.PresetRules = rules
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := &durableBroker{t: t, dir: t.TempDir(), opts: o, lopts: lopts}
	b.start("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b, logs
}

// filtersOf returns the filters of clientID's session, sorted; nil
// without a session.
func filtersOf(s *Server, clientID string) []string {
	_, subs, ok := s.Session(clientID)
	if !ok {
		return nil
	}
	out := []string{}
	for _, sub := range subs {
		out = append(out, sub.Filter)
	}
	return out
}

func waitFilters(t *testing.T, s *Server, clientID string, want ...string) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := filtersOf(s, clientID); !slices.Equal(got, want) {
			return fmt.Errorf("%s subscribed to %q, want %q", clientID, got, want)
		}
		return nil
	})
}

// connectUser connects a raw client of version v with a user name.
func connectUser(t *testing.T, addr string, v packet.Version, id, user string, clean bool) *rawClient {
	t.Helper()
	c := dialRaw(t, addr, v)
	cp := &packet.Connect{ClientID: id, CleanStart: clean, KeepAlive: 60}
	if user != "" {
		cp.UsernameFlag, cp.Username = true, user
	}
	if ack := c.connect(cp); ack.Reason != packet.Success {
		t.Fatalf("connect %q: %v", id, ack.Reason)
	}
	return c
}

// publisher connects a 3.1.1 client that publishes with QoS 1.
type publisher struct {
	*rawClient
	next uint16
}

func newPublisher(t *testing.T, addr, id string) *publisher {
	t.Helper()
	return &publisher{rawClient: connectUser(t, addr, packet.V311, id, "", true)}
}

func (p *publisher) pub(topic, payload string, retain bool) {
	p.t.Helper()
	p.next++
	p.publishAck(&packet.Publish{Topic: topic, QoS: 1, PacketID: p.next, Payload: []byte(payload), Retain: retain})
}

// expectTopics reads n messages, acknowledging them, and checks their
// topics and payloads ("topic=payload"), in order.
func (c *rawClient) expectTopics(want ...string) {
	c.t.Helper()
	var got []string
	for range want {
		p := c.recvPublishAck()
		got = append(got, p.Topic+"="+string(p.Payload))
	}
	if !slices.Equal(got, want) {
		c.t.Fatalf("received %q, want %q", got, want)
	}
}

// A client is subscribed to its presets when it connects, whatever its
// protocol version: rules with %c and %u, rules for one client ID and
// stored presets, without sending SUBSCRIBE.
func TestPresets_AllProtocolVersions(t *testing.T) {
	b, _ := startPresets(t, []PresetRule{
		{Client: "*", Preset: Preset{Filter: "devices/%c/cmd", QoS: 1}},
		{Client: "", Preset: Preset{Filter: "users/%u/inbox", QoS: 1}},
		{Client: "dev-5", Preset: Preset{Filter: "only/five", QoS: 1}},
	}, ListenerOptions{})
	s := b.srv
	if _, err := s.SetPreset("dev-31", Preset{Filter: "stored/31/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, b.addr, "pub")

	for _, v := range []packet.Version{packet.V31, packet.V311} {
		n := map[packet.Version]string{packet.V31: "31", packet.V311: "311"}[v]
		id, user := "dev-"+n, "user-"+n
		c := connectUser(t, b.addr, v, id, user, true)
		want := []string{"devices/" + id + "/cmd", "users/" + user + "/inbox"}
		if v == packet.V31 {
			want = append(want, "stored/31/#")
		}
		slices.Sort(want)
		waitFilters(t, s, id, want...)
		pub.pub("devices/"+id+"/cmd", "c", false)
		pub.pub("users/"+user+"/inbox", "u", false)
		pub.pub("only/five", "x", false) // for dev-5 alone
		pub.pub("stored/31/a", "s", false)
		pub.pub("devices/"+id+"/cmd", "end", false) // anything wrongly sent comes before it
		msgs := []string{"devices/" + id + "/cmd=c", "users/" + user + "/inbox=u"}
		if v == packet.V31 {
			msgs = append(msgs, "stored/31/a=s")
		}
		c.expectTopics(append(msgs, "devices/"+id+"/cmd=end")...)
	}

	// v5, with paho.
	c := connectV5(t, b.addr, &paho.Connect{ClientID: "dev-5", Username: "user-5", UsernameFlag: true, CleanStart: true})
	waitFilters(t, s, "dev-5", "devices/dev-5/cmd", "only/five", "users/user-5/inbox")
	pub.pub("stored/31/a", "not for 5", false)
	pub.pub("only/five", "five", false)
	if p := c.recv(); p.Topic != "only/five" || string(p.Payload) != "five" || p.QoS != 1 {
		t.Fatalf("v5 client got %q %q qos %d", p.Topic, p.Payload, p.QoS)
	}
	pub.pub("devices/dev-5/cmd", "cmd", false)
	if p := c.recv(); p.Topic != "devices/dev-5/cmd" {
		t.Fatalf("v5 client got %q", p.Topic)
	}

	// The publisher, which has no user name, got the %c rule only.
	waitFilters(t, s, "pub", "devices/pub/cmd")
}

// Values that would put a wildcard in a filter through %c or %u skip
// the rule: a client named "#" must not get devices/#.
func TestPresets_WildcardInClientIDSkipped(t *testing.T) {
	b, logs := startPresets(t, []PresetRule{
		{Preset: Preset{Filter: "devices/%c", QoS: 1}},
		{Preset: Preset{Filter: "users/%u", QoS: 1}},
		{Preset: Preset{Filter: "fixed/topic", QoS: 1}},
	}, ListenerOptions{})
	connectUser(t, b.addr, packet.V311, "#", "+", true)
	waitFilters(t, b.srv, "#", "fixed/topic")
	connectUser(t, b.addr, packet.V5, "a/b", "", true) // no user name: no %u rule
	waitFilters(t, b.srv, "a/b", "devices/a/b", "fixed/topic")
	if !strings.Contains(logs.String(), "client ID holds a wildcard") || !strings.Contains(logs.String(), "user name holds a wildcard") {
		t.Errorf("skipped rules not logged:\n%s", logs)
	}
}

// Preset subscriptions are subject to the ACL (a real one, in
// Mosquitto's format): a denied one is skipped and logged, the others
// apply.
func TestPresets_ACLDenied(t *testing.T) {
	// Everyone may publish anywhere, and read only open/{client ID}.
	acl, err := auth.ParseACL(strings.NewReader("topic write #\npattern read open/%c\n"), "acl")
	if err != nil {
		t.Fatal(err)
	}
	b, logs := startPresets(t, []PresetRule{
		{Preset: Preset{Filter: "secret/%c", QoS: 1}},
		{Preset: Preset{Filter: "open/%c", QoS: 1}},
	}, ListenerOptions{Auth: NewAuth(AuthPolicy{AllowAnonymous: true, ACL: acl})})
	c := connectUser(t, b.addr, packet.V311, "dev", "", true)
	waitFilters(t, b.srv, "dev", "open/dev")
	pub := newPublisher(t, b.addr, "pub")
	pub.pub("secret/dev", "no", false)
	pub.pub("open/dev", "yes", false)
	c.expectTopics("open/dev=yes")
	if !strings.Contains(logs.String(), `level=INFO msg="preset subscription skipped" client_id=dev username="" topic=secret/dev`) {
		t.Errorf("denied preset not logged:\n%s", logs)
	}
}

// Stored presets set or deleted while the client is connected apply at
// once; a set preset replaces the options of one with the same filter.
func TestPresets_SetAndDeleteWhileOnline(t *testing.T) {
	b, _ := startPresets(t, []PresetRule{{Preset: Preset{Filter: "marker/%c", QoS: 1}}}, ListenerOptions{})
	s := b.srv
	pub := newPublisher(t, b.addr, "pub")
	v3 := connectUser(t, b.addr, packet.V311, "dev-3", "", true)
	v5 := connectV5(t, b.addr, &paho.Connect{ClientID: "dev-5", CleanStart: true})
	waitFilters(t, s, "dev-5", "marker/dev-5")

	for _, id := range []string{"dev-3", "dev-5"} {
		applied, err := s.SetPreset(id, Preset{Filter: "cmd/" + id + "/#", QoS: 2})
		if err != nil || !applied {
			t.Fatalf("SetPreset %s: applied %v, %v", id, applied, err)
		}
		// In the session at once, as the admin API shows it.
		if got := filtersOf(s, id); !slices.Equal(got, []string{"cmd/" + id + "/#", "marker/" + id}) {
			t.Fatalf("%s filters after SetPreset: %q", id, got)
		}
	}
	pub.pub("cmd/dev-3/x", "3", false)
	v3.expectTopics("cmd/dev-3/x=3")
	pub.pub("cmd/dev-5/x", "5", false)
	if p := v5.recv(); p.Topic != "cmd/dev-5/x" || p.QoS != 1 {
		t.Fatalf("dev-5 got %q qos %d", p.Topic, p.QoS)
	}
	// New options replace the old.
	if _, err := s.SetPreset("dev-3", Preset{Filter: "cmd/dev-3/#", QoS: 0}); err != nil {
		t.Fatal(err)
	}
	if _, subs, _ := s.Session("dev-3"); subs[0].Filter != "cmd/dev-3/#" || subs[0].QoS != 0 {
		t.Fatalf("dev-3 subscriptions %+v, want cmd/dev-3/# qos 0", subs)
	}

	// Deleting unsubscribes: a message on the deleted filter does not
	// come before the marker that follows it.
	n, applied, err := s.DeletePreset("dev-3", "cmd/dev-3/#")
	if err != nil || n != 1 || !applied {
		t.Fatalf("DeletePreset: %d %v %v", n, applied, err)
	}
	n, applied, err = s.DeletePreset("dev-5", "")
	if err != nil || n != 1 || !applied {
		t.Fatalf("DeletePreset all: %d %v %v", n, applied, err)
	}
	waitFilters(t, s, "dev-3", "marker/dev-3")
	waitFilters(t, s, "dev-5", "marker/dev-5")
	pub.pub("cmd/dev-3/x", "gone", false)
	pub.pub("marker/dev-3", "m", false)
	v3.expectTopics("marker/dev-3=m")
	pub.pub("cmd/dev-5/x", "gone", false)
	pub.pub("marker/dev-5", "m", false)
	if p := v5.recv(); p.Topic != "marker/dev-5" {
		t.Fatalf("dev-5 got %q after the delete, want the marker", p.Topic)
	}
	// Nothing left to delete; a rule cannot be deleted.
	if n, _, err := s.DeletePreset("dev-3", ""); n != 0 || err != nil {
		t.Fatalf("second delete: %d %v", n, err)
	}
	if n, _, _ := s.DeletePreset("dev-3", "marker/dev-3"); n != 0 {
		t.Fatal("deleted a rule's subscription")
	}
	waitFilters(t, s, "dev-3", "marker/dev-3")
}

// A stored preset replaces a rule's options for a filter both give, and
// deleting the stored one brings the rule's back.
func TestPresets_StoredOverridesRule(t *testing.T) {
	b, _ := startPresets(t, []PresetRule{{Preset: Preset{Filter: "cmd/%c", QoS: 0}}}, ListenerOptions{})
	s := b.srv
	connectUser(t, b.addr, packet.V311, "dev", "", true)
	waitFilters(t, s, "dev", "cmd/dev")
	if _, err := s.SetPreset("dev", Preset{Filter: "cmd/dev", QoS: 2}); err != nil {
		t.Fatal(err)
	}
	qos := func() byte {
		_, subs, _ := s.Session("dev")
		return subs[0].QoS
	}
	if q := qos(); q != 2 {
		t.Fatalf("QoS %d after the stored preset, want 2", q)
	}
	if n, _, err := s.DeletePreset("dev", "cmd/dev"); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if q := qos(); q != 0 || !slices.Equal(filtersOf(s, "dev"), []string{"cmd/dev"}) {
		t.Fatalf("after the delete: %q qos %d, want the rule's cmd/dev qos 0", filtersOf(s, "dev"), q)
	}
	got := s.Presets("dev")
	if len(got) != 1 || got[0].Source != "config" || got[0].Filter != "cmd/dev" {
		t.Fatalf("Presets(dev) = %+v", got)
	}
}

// Retained messages come per the preset's retain handling, at every
// connection as for a SUBSCRIBE sent again.
func TestPresets_RetainHandling(t *testing.T) {
	b, _ := startPresets(t, []PresetRule{
		{Client: "rh", Preset: Preset{Filter: "r/0", QoS: 1, RetainHandling: 0}},
		{Client: "rh", Preset: Preset{Filter: "r/1", QoS: 1, RetainHandling: 1}},
		{Client: "rh", Preset: Preset{Filter: "r/2", QoS: 1, RetainHandling: 2}},
		{Client: "rh", Preset: Preset{Filter: "marker", QoS: 1}},
	}, ListenerOptions{})
	pub := newPublisher(t, b.addr, "pub")
	for _, topic := range []string{"r/0", "r/1", "r/2"} {
		pub.pub(topic, "retained "+topic, true)
	}
	props := withExpiry(3600)
	for round := range 2 {
		c := dialRaw(t, b.addr, packet.V5)
		ack := c.connect(&packet.Connect{ClientID: "rh", CleanStart: round == 0, KeepAlive: 60, Properties: props})
		if ack.SessionPresent != (round == 1) {
			t.Fatalf("round %d: session present %v", round, ack.SessionPresent)
		}
		got := map[string]bool{}
		for range 2 - round { // r/0 and r/1 first, then r/0 alone
			p := c.recvPublishAck()
			if !p.Retain {
				t.Fatalf("retained message %q without RETAIN", p.Topic)
			}
			got[p.Topic] = true
		}
		pub.pub("marker", "m", false)
		if p := c.recvPublishAck(); p.Topic != "marker" {
			t.Fatalf("round %d: got %q, want the marker (retained %v)", round, p.Topic, got)
		}
		if !got["r/0"] || (round == 0) != got["r/1"] || got["r/2"] {
			t.Fatalf("round %d: retained messages %v", round, got)
		}
		c.disconnect()
		waitOffline(t, b.srv, "rh")
	}
}

// A durable session's preset subscriptions persist like its own: after
// a restart, messages published while the client was away wait for it.
// Stored presets survive the restart too.
func TestPresets_SurviveRestart(t *testing.T) {
	b, _ := startPresets(t, nil, ListenerOptions{})
	if _, err := b.srv.SetPreset("dur", Preset{Filter: "jobs/dur", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr, packet.V5)
	c.connect(&packet.Connect{ClientID: "dur", KeepAlive: 60, Properties: withExpiry(3600)})
	waitFilters(t, b.srv, "dur", "jobs/dur")
	c.disconnect()
	waitOffline(t, b.srv, "dur")
	b.restart()

	if got := b.srv.Presets("dur"); len(got) != 1 || got[0].Filter != "jobs/dur" || got[0].QoS != 1 || got[0].Source != "stored" {
		t.Fatalf("presets after restart: %+v", got)
	}
	waitFilters(t, b.srv, "dur", "jobs/dur")
	pub := newPublisher(t, b.addr, "pub")
	pub.pub("jobs/dur", "while away", false)
	c = dialRaw(t, b.addr, packet.V5)
	if ack := c.connect(&packet.Connect{ClientID: "dur", KeepAlive: 60, Properties: withExpiry(3600)}); !ack.SessionPresent {
		t.Fatal("session not present after restart")
	}
	c.expectTopics("jobs/dur=while away")

	// A clean start under the same client ID gets the stored preset too.
	c.disconnect()
	c = connectUser(t, b.addr, packet.V311, "dur", "", true)
	waitFilters(t, b.srv, "dur", "jobs/dur")
	pub.pub("jobs/dur", "clean", false)
	c.expectTopics("jobs/dur=clean")
}

// Deleting a stored preset takes its subscription from an offline
// session, so nothing more queues for it.
func TestPresets_DeleteWhileOffline(t *testing.T) {
	b, _ := startPresets(t, []PresetRule{{Preset: Preset{Filter: "rule/%c", QoS: 1}}}, ListenerOptions{})
	s := b.srv
	if _, err := s.SetPreset("off", Preset{Filter: "stored/off", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr, packet.V5)
	c.connect(&packet.Connect{ClientID: "off", KeepAlive: 60, Properties: withExpiry(3600)})
	waitFilters(t, s, "off", "rule/off", "stored/off")
	c.disconnect()
	waitOffline(t, s, "off")
	n, applied, err := s.DeletePreset("off", "")
	if n != 1 || applied || err != nil {
		t.Fatalf("DeletePreset offline: %d %v %v", n, applied, err)
	}
	waitFilters(t, s, "off", "rule/off")
	// Committed: a restart keeps the session without it.
	b.restart()
	waitFilters(t, b.srv, "off", "rule/off")
}

// SetPresetRules (SIGHUP) gives connected clients the difference at
// once.
func TestPresets_ReloadRules(t *testing.T) {
	b, _ := startPresets(t, []PresetRule{{Preset: Preset{Filter: "old/%c", QoS: 1}}}, ListenerOptions{})
	s := b.srv
	c := connectUser(t, b.addr, packet.V311, "dev", "", true)
	waitFilters(t, s, "dev", "old/dev")
	s.SetPresetRules([]PresetRule{{Client: "dev", Preset: Preset{Filter: "new/%c", QoS: 1}}, {Client: "other", Preset: Preset{Filter: "x"}}})
	waitFilters(t, s, "dev", "new/dev")
	pub := newPublisher(t, b.addr, "pub")
	waitFilters(t, s, "pub") // the new rules are for dev and other only
	pub.pub("old/dev", "old", false)
	pub.pub("new/dev", "new", false)
	c.expectTopics("new/dev=new")
}

func TestPresets_Invalid(t *testing.T) {
	b, _ := startPresets(t, nil, ListenerOptions{})
	for _, tc := range []struct {
		id string
		p  Preset
	}{
		{"", Preset{Filter: "a"}},
		{"a\x00b", Preset{Filter: "a"}},
		{"dev", Preset{Filter: "a/#/b"}},
		{"dev", Preset{Filter: ""}},
		{"dev", Preset{Filter: "a", QoS: 3}},
		{"dev", Preset{Filter: "a", RetainHandling: 3}},
		{"dev", Preset{Filter: "$share/g/a", NoLocal: true}},
		{strings.Repeat("c", 30000), Preset{Filter: strings.Repeat("f", 3000)}}, // a bbolt key holds 32 KiB
	} {
		if _, err := b.srv.SetPreset(tc.id, tc.p); !errors.Is(err, ErrInvalidPreset) {
			t.Errorf("SetPreset(%q, %+v): %v, want ErrInvalidPreset", tc.id, tc.p, err)
		}
	}
	if got := b.srv.Presets(""); len(got) != 0 {
		t.Errorf("presets stored: %+v", got)
	}
	// Without a store there is nowhere to keep them.
	s, _ := newTestBroker(t, testOptions())
	if _, err := s.SetPreset("dev", Preset{Filter: "a"}); !errors.Is(err, ErrNoPresetStore) {
		t.Errorf("SetPreset without a store: %v", err)
	}
}

func TestPresets_Encoding(t *testing.T) {
	for _, p := range []Preset{
		{Filter: "a", QoS: 0},
		{Filter: "b", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
		{Filter: "c", QoS: 1, RetainHandling: 1},
	} {
		got, err := unmarshalPreset(p.Filter, p.marshal())
		if err != nil || got != p {
			t.Errorf("round trip of %+v: %+v %v", p, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0}, {1, 3}, {1, 0x30}, {1, 0x40}, {1, 0, 0}} {
		if _, err := unmarshalPreset("x", bad); err == nil {
			t.Errorf("unmarshalPreset(% x) accepted", bad)
		}
	}
}
