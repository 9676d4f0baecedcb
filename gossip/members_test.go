package gossip

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// tableGroup is a Group with only its member table, on a clock the test
// moves, for the table's rules without a network.
func tableGroup(self string, now *time.Time) *Group {
	return &Group{
		opts:    Options{Name: self},
		log:     discard,
		events:  make(chan event, eventQueue),
		now:     func() time.Time { return *now },
		members: make(map[string]*Member),
	}
}

func node(name string, port uint16, m meta) *memberlist.Node {
	b, _ := m.encode(memberlist.MetaMaxSize)
	return &memberlist.Node{Name: name, Addr: net.IPv4(10, 0, 0, 1), Port: port, Meta: b}
}

// TestGroup_Transitions drives the delegates as memberlist would and
// checks the member table and the events it emits.
func TestGroup_Transitions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := tableGroup("a", &now)
	ev := (*events)(g)
	next := func() string {
		select {
		case e := <-g.events:
			return e.kind.String() + " " + e.m.Name + " " + e.m.State.String()
		default:
			return "none"
		}
	}
	steps := []struct {
		name string
		do   func()
		want string // the state of b afterwards
		emit string // the event emitted, or "none"
	}{
		{"self joins, no event", func() { ev.NotifyJoin(node("a", 1, meta{})) }, "", "none"},
		{"b joins", func() { ev.NotifyJoin(node("b", 2, meta{Site: "s-b", Version: "1.0"})) }, "alive", "join b alive"},
		{"a failed probe makes it suspect", func() { g.suspect("b") }, "suspect", "suspect b suspect"},
		{"suspect again: no change", func() { g.suspect("b") }, "suspect", "none"},
		{"a probe answered: alive again", func() { (*pings)(g).NotifyPingComplete(node("b", 2, meta{}), time.Millisecond, nil) }, "alive", "recover b alive"},
		{"probe answered while alive: no event", func() { (*pings)(g).NotifyPingComplete(node("b", 2, meta{}), time.Millisecond, nil) }, "alive", "none"},
		{"suspect then declared dead", func() { g.suspect("b"); <-g.events; ev.NotifyLeave(node("b", 2, meta{})) }, "dead", "fail b dead"},
		{"a late probe line does not revive the dead as suspect", func() { g.suspect("b") }, "dead", "none"},
		{"restarts from a new address", func() { ev.NotifyJoin(node("b", 3, meta{Site: "s-b"})) }, "alive", "join b alive"},
		{"says it is leaving: still alive", func() { ev.NotifyUpdate(node("b", 3, meta{Site: "s-b", Leaving: true})) }, "alive", "update b alive"},
		{"then leaves", func() { ev.NotifyLeave(node("b", 3, meta{Site: "s-b", Leaving: true})) }, "left", "leave b left"},
		{"unknown member suspected: ignored", func() { g.suspect("zz") }, "left", "none"},
	}
	for _, st := range steps {
		st.do()
		if got := next(); got != st.emit {
			t.Fatalf("%s: event %q, want %q", st.name, got, st.emit)
		}
		if st.want == "" {
			continue
		}
		m, ok := member(g, "b")
		if !ok || m.State.String() != st.want {
			t.Fatalf("%s: b is %+v, want %s", st.name, m, st.want)
		}
	}
	m, _ := member(g, "b")
	if m.Addr != "10.0.0.1:3" || m.Site != "s-b" || m.Since != now {
		t.Errorf("b = %+v", m)
	}
	self, _ := member(g, "a")
	if !self.Self || self.State != StateAlive {
		t.Errorf("self = %+v", self)
	}
}

// TestGroup_Prune: dead and left members are listed for 24 hours, and at
// most 64 of them, the most recent.
func TestGroup_Prune(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	g := tableGroup("a", &now)
	ev := (*events)(g)
	ev.NotifyJoin(node("a", 1, meta{}))
	ev.NotifyJoin(node("live", 2, meta{}))
	for i := range maxGone + 10 { // gone-NNN went at start + NNN minutes
		now = start.Add(time.Duration(i) * time.Minute)
		name := fmt.Sprintf("gone-%03d", i)
		ev.NotifyJoin(node(name, 3, meta{}))
		ev.NotifyLeave(node(name, 3, meta{}))
	}
	ms := g.Members()
	if len(ms) != 2+maxGone || ms[0].Name != "a" || ms[1].Name != "gone-010" || ms[len(ms)-1].Name != "live" {
		t.Fatalf("%d members, %v first, %v last", len(ms), ms[:2], ms[len(ms)-1])
	}
	now = start.Add(goneRetention + 20*time.Minute)
	ms = g.Members()
	if len(ms) != 2+maxGone+10-20 || ms[1].Name != "gone-020" {
		t.Fatalf("after 24h20m: %d members, second %s", len(ms), ms[1].Name)
	}
	now = start.Add(26 * time.Hour)
	if got := states(g); got != "a=alive live=alive" {
		t.Errorf("after 26h: %s", got)
	}
}

func TestPrintable(t *testing.T) {
	if got := printable("gw-1\x1b[2Jé\n"); got != "gw-1?[2Jé?" {
		t.Errorf("printable = %q", got)
	}
}

func TestDecodeMeta(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want meta
	}{
		{`{"site":"0011","version":"1.2","leaving":true}`, meta{Site: "0011", Version: "1.2", Leaving: true}},
		{`{"site":"0011","future":[1,2]}`, meta{Site: "0011"}},
		{`not json`, meta{}},
		{``, meta{}},
		{`{"site":5}`, meta{}},
	} {
		if got := decodeMeta([]byte(tc.in)); got != tc.want {
			t.Errorf("decodeMeta(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if _, err := (meta{Version: string(make([]byte, 600))}).encode(memberlist.MetaMaxSize); err != errMetaTooLong {
		t.Errorf("encode of 600 bytes: %v", err)
	}
}

func TestSuspectName(t *testing.T) {
	for line, want := range map[string]string{
		"Suspect gw-2 has failed, no acks received": "gw-2",
		"Suspect  has failed, no acks received":     "",
		"Marking gw-2 as failed, suspect timeout":   "-",
		"Suspect gw-2 has failed":                   "-",
	} {
		got, ok := suspectName(line)
		if !ok {
			got = "-"
		}
		if got != want {
			t.Errorf("suspectName(%q) = %q, want %q", line, got, want)
		}
	}
}
