package broker

import (
	"strings"
	"sync"
	"sync/atomic"

	"gatemq/broker/packet"
	"gatemq/session"
)

// subscriber is one subscription of one session, as stored in the topic
// tree and returned by match.
type subscriber struct {
	sess   *session.Session
	sub    session.Subscription
	shared bool // from a $share/{group}/ subscription
}

// topicNode is a level of the subscription tree. The children map is
// keyed by the level's text, including "+" and "#".
type topicNode struct {
	parent   *topicNode
	key      string
	children map[string]*topicNode
	subs     []subscriber
	groups   []*sharedGroup
}

// sharedGroup is the set of sessions subscribed with one
// $share/{group}/{filter}; each message goes to one of them.
type sharedGroup struct {
	name    string
	members []subscriber
	next    atomic.Uint32
}

// topicTree maps topic filters to subscribers. Lookups take a read lock,
// so publishers match concurrently; subscription changes take the write
// lock.
type topicTree struct {
	// mu guards root and count.
	mu    sync.RWMutex
	root  topicNode
	count int
}

// splitShared returns the group and topic filter of a $share/{group}/
// filter, or the filter itself when it is not shared [MQTT-4.8.2].
func splitShared(filter string) (group, topicFilter string, shared bool) {
	if g, f, ok := packet.SharedFilter(filter); ok {
		return g, f, true
	}
	return "", filter, false
}

// subscribe adds or replaces the subscription of s with sub.Filter and
// reports whether it replaced one.
func (t *topicTree) subscribe(s *session.Session, sub session.Subscription) bool {
	group, filter, shared := splitShared(sub.Filter)
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	for level := range strings.SplitSeq(filter, "/") {
		c := n.children[level]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*topicNode)
			}
			c = &topicNode{parent: n, key: level}
			n.children[level] = c
		}
		n = c
	}
	e := subscriber{sess: s, sub: sub, shared: shared}
	list := &n.subs
	if shared {
		var g *sharedGroup
		for _, x := range n.groups {
			if x.name == group {
				g = x
				break
			}
		}
		if g == nil {
			g = &sharedGroup{name: group}
			n.groups = append(n.groups, g)
		}
		list = &g.members
	}
	for i := range *list {
		if (*list)[i].sess == s {
			(*list)[i] = e
			return true
		}
	}
	*list = append(*list, e)
	t.count++
	return false
}

// unsubscribe removes the subscription of s with filter and reports
// whether there was one.
func (t *topicTree) unsubscribe(s *session.Session, fullFilter string) bool {
	group, filter, shared := splitShared(fullFilter)
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	for level := range strings.SplitSeq(filter, "/") {
		if n = n.children[level]; n == nil {
			return false
		}
	}
	removed := false
	if shared {
		for gi, g := range n.groups {
			if g.name != group {
				continue
			}
			g.members, removed = removeSub(g.members, s)
			if len(g.members) == 0 {
				n.groups = append(n.groups[:gi], n.groups[gi+1:]...)
			}
			break
		}
	} else {
		n.subs, removed = removeSub(n.subs, s)
	}
	if !removed {
		return false
	}
	t.count--
	// Prune the levels nothing hangs from any more, so the tree does not
	// grow with every filter ever used.
	for n.parent != nil && len(n.subs) == 0 && len(n.groups) == 0 && len(n.children) == 0 {
		delete(n.parent.children, n.key)
		n = n.parent
	}
	return true
}

func removeSub(list []subscriber, s *session.Session) ([]subscriber, bool) {
	for i := range list {
		if list[i].sess == s {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = subscriber{}
			return list[:last], true
		}
	}
	return list, false
}

// len returns the number of subscriptions.
func (t *topicTree) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// match appends to out the subscribers of every filter matching topic:
// all subscribers of ordinary subscriptions, and one member of each
// matching shared group (round robin, preferring online sessions).
func (t *topicTree) match(topic string, out []subscriber) []subscriber {
	t.mu.RLock()
	defer t.mu.RUnlock()
	// A filter starting with a wildcard does not match a topic starting
	// with "$" [MQTT-4.7.2-1].
	dollar := len(topic) > 0 && topic[0] == '$'
	return t.root.walk(topic, 0, dollar, out)
}

// walk matches the levels of topic from byte pos on; pos == len(topic)+1
// means every level has been consumed.
func (n *topicNode) walk(topic string, pos int, dollar bool, out []subscriber) []subscriber {
	wild := !(dollar && pos == 0)
	if wild {
		// "#" also matches the parent level: "a/#" matches "a" [MQTT-4.7.1-2].
		if h := n.children["#"]; h != nil {
			out = h.collect(out)
		}
	}
	if pos > len(topic) {
		return n.collect(out)
	}
	var level string
	next := len(topic) + 1
	if i := strings.IndexByte(topic[pos:], '/'); i >= 0 {
		level, next = topic[pos:pos+i], pos+i+1
	} else {
		level = topic[pos:]
	}
	if c := n.children[level]; c != nil {
		out = c.walk(topic, next, dollar, out)
	}
	if wild {
		if c := n.children["+"]; c != nil {
			out = c.walk(topic, next, dollar, out)
		}
	}
	return out
}

func (n *topicNode) collect(out []subscriber) []subscriber {
	out = append(out, n.subs...)
	for _, g := range n.groups {
		out = append(out, g.pick())
	}
	return out
}

// pick chooses the group member for the next message: the next online one
// in round-robin order, or the next one when none is online (a persistent
// session queues it).
func (g *sharedGroup) pick() subscriber {
	n := uint32(len(g.members))
	start := g.next.Add(1) - 1
	for i := uint32(0); i < n; i++ {
		m := g.members[(start+i)%n]
		if m.sess.Online() {
			if i > 0 {
				g.next.Add(i)
			}
			return m
		}
	}
	return g.members[start%n]
}
