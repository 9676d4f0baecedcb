package gossip

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// State is a member's state as this gateway sees it.
type State uint8

// The states of a member; the package documentation says when each holds.
const (
	StateAlive State = iota
	StateSuspect
	StateDead
	StateLeft
)

// States lists every State, in order.
var States = []State{StateAlive, StateSuspect, StateDead, StateLeft}

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

// gone reports whether a member in state s is no longer in the group.
func (s State) gone() bool { return s == StateDead || s == StateLeft }

// Member is a gateway of the group, as this gateway sees it.
type Member struct {
	Name    string    // unique in the group
	Addr    string    // host:port of its gossip
	State   State     // as this gateway sees it
	Since   time.Time // when this gateway saw it enter State
	Site    string    // its store's site ID; "" without a store
	Version string    // its gatemq version
	Self    bool      // this gateway
}

// Limits of the member table.
const (
	goneRetention = 24 * time.Hour // dead and left members are listed this long
	maxGone       = 64             // and at most this many of them
)

// Members returns the members this gateway knows of, itself first, then
// by name: the live ones and those dead or left within the last 24 hours.
// It is safe for concurrent use.
func (g *Group) Members() []Member {
	g.mu.Lock()
	g.pruneLocked(g.now())
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int {
		if a.Self != b.Self {
			if a.Self {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// livePeersLocked returns how many other members are alive or suspect.
func (g *Group) livePeersLocked() int {
	n := 0
	for _, m := range g.members {
		if !m.Self && !m.State.gone() {
			n++
		}
	}
	return n
}

// deadAddrsLocked returns the addresses of the dead members, which the
// joiner asks to join again.
func (g *Group) deadAddrsLocked() []string {
	var out []string
	for _, m := range g.members {
		if m.State == StateDead && !m.Self {
			out = append(out, m.Addr)
		}
	}
	slices.Sort(out)
	return out
}

// pruneLocked drops dead and left members older than goneRetention, and
// the oldest beyond maxGone.
func (g *Group) pruneLocked(now time.Time) {
	var gone []*Member
	for name, m := range g.members {
		switch {
		case m.Self || !m.State.gone():
		case now.Sub(m.Since) > goneRetention:
			delete(g.members, name)
		default:
			gone = append(gone, m)
		}
	}
	if len(gone) <= maxGone {
		return
	}
	slices.SortFunc(gone, func(a, b *Member) int { return a.Since.Compare(b.Since) })
	for _, m := range gone[:len(gone)-maxGone] {
		delete(g.members, m.Name)
	}
}

// set records node n, with its address and metadata, in state s, and
// returns a copy of the member and its previous state.
func (g *Group) set(n *memberlist.Node, s State) (Member, State) {
	g.mu.Lock()
	defer g.mu.Unlock()
	name := printable(n.Name)
	m, known := g.members[name]
	if !known {
		m = &Member{Name: name, Self: n.Name == g.opts.Name}
		g.members[name] = m
	}
	prev := m.State
	md := decodeMeta(n.Meta)
	m.Addr = n.Address()
	m.Site, m.Version = printable(md.Site), printable(md.Version)
	if !known || prev != s {
		m.State, m.Since = s, g.now()
	}
	g.pruneLocked(g.now())
	return *m, prev
}

// move changes the state of the member named name from one state to
// another, emitting an event of kind; a member in another state, this
// gateway and an unknown name are left alone.
func (g *Group) move(name string, from, to State, kind eventKind) {
	g.mu.Lock()
	m, ok := g.members[printable(name)]
	if !ok || m.Self || m.State != from {
		g.mu.Unlock()
		return
	}
	m.State, m.Since = to, g.now()
	cp := *m
	g.mu.Unlock()
	g.emit(event{kind: kind, m: cp})
}

// printable replaces the characters of a peer's strings that a terminal
// could take for commands.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

// events is the group's memberlist.EventDelegate. memberlist calls it
// with its node lock held, never concurrently.
type events Group

func (e *events) NotifyJoin(n *memberlist.Node) {
	g := (*Group)(e)
	m, _ := g.set(n, StateAlive)
	g.emit(event{kind: evJoin, m: m})
}

// NotifyLeave is called when a member is declared dead, or left. The
// node's State does not say which (memberlist 0.7 never sets
// Node.State: its nodeState has a State field of its own), so a member
// whose last metadata said it was leaving (Group.Leave) has left, and
// any other has failed.
func (e *events) NotifyLeave(n *memberlist.Node) {
	g := (*Group)(e)
	s, kind := StateDead, evFail
	if decodeMeta(n.Meta).Leaving {
		s, kind = StateLeft, evLeave
	}
	m, _ := g.set(n, s)
	g.emit(event{kind: kind, m: m})
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	g := (*Group)(e)
	m, prev := g.set(n, StateAlive)
	kind := evUpdate
	if prev == StateSuspect {
		kind = evRecover
	}
	g.emit(event{kind: kind, m: m})
}

// pings is the group's memberlist.PingDelegate: a direct probe answered
// means a suspect member is alive after all.
type pings Group

func (p *pings) AckPayload() []byte { return nil }

func (p *pings) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	(*Group)(p).move(n.Name, StateSuspect, StateAlive, evRecover)
}

// suspect records that this gateway's probe of the member name failed
// (mlLog). Only a member known alive becomes suspect: the line may come
// after the member's death or departure was recorded.
func (g *Group) suspect(name string) { g.move(name, StateAlive, StateSuspect, evSuspect) }

// conflicts is the group's memberlist.ConflictDelegate: two nodes claim
// one name.
type conflicts Group

func (c *conflicts) NotifyConflict(existing, other *memberlist.Node) {
	g := (*Group)(c)
	g.emit(event{kind: evConflict, m: Member{Name: printable(existing.Name), Addr: existing.Address()}, other: other.Address()})
}
