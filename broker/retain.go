package broker

import (
	"strings"
	"sync"

	"gatemq/session"
)

// retainNode is a level of the retained-message tree.
type retainNode struct {
	parent   *retainNode
	key      string
	children map[string]*retainNode
	msg      *session.Message
	at       int64 // when msg was stored (unix ns)
}

// retainStore holds the last retained message of each topic [MQTT-3.3.1-5].
// It is safe for concurrent use.
type retainStore struct {
	// mu guards root and count.
	mu    sync.RWMutex
	root  retainNode
	count int
}

// set stores m as the retained message of its topic, stored at at
// (unix ns), or deletes the topic's retained message when m's payload is
// empty [MQTT-3.3.1-6]. It reports whether m replaced or deleted one.
func (r *retainStore) set(m *session.Message, at int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setLocked(m, at)
}

// setLocked is set with r.mu held for writing.
func (r *retainStore) setLocked(m *session.Message, at int64) bool {
	n := &r.root
	del := len(m.Payload) == 0
	for level := range strings.SplitSeq(m.Topic, "/") {
		c := n.children[level]
		if c == nil {
			if del {
				return false
			}
			if n.children == nil {
				n.children = make(map[string]*retainNode)
			}
			c = &retainNode{parent: n, key: level}
			n.children[level] = c
		}
		n = c
	}
	had := n.msg != nil
	switch {
	case del && had:
		n.msg = nil
		r.count--
		for n.parent != nil && n.msg == nil && len(n.children) == 0 {
			delete(n.parent.children, n.key)
			n = n.parent
		}
	case !del:
		if !had {
			r.count++
		}
		n.msg, n.at = m, at
	}
	return had
}

// len returns the number of retained messages.
func (r *retainStore) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// match appends the retained messages whose topics match filter (which
// must be a valid filter without a $share prefix) to out, skipping those
// expired at now.
func (r *retainStore) match(filter string, now int64, out []*session.Message) []*session.Message {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.matchLocked(filter, now, out)
}

// matchLocked is match with r.mu held.
func (r *retainStore) matchLocked(filter string, now int64, out []*session.Message) []*session.Message {
	return r.root.walk(strings.Split(filter, "/"), 0, now, out)
}

func (n *retainNode) walk(levels []string, i int, now int64, out []*session.Message) []*session.Message {
	if i == len(levels) {
		if n.msg != nil && !n.msg.Expired(now) {
			out = append(out, n.msg)
		}
		return out
	}
	switch levels[i] {
	case "#":
		if n.msg != nil && !n.msg.Expired(now) && i > 0 {
			out = append(out, n.msg) // "a/#" matches "a"
		}
		for k, c := range n.children {
			if i == 0 && strings.HasPrefix(k, "$") {
				continue // [MQTT-4.7.2-1]
			}
			out = c.all(now, out)
		}
	case "+":
		for k, c := range n.children {
			if i == 0 && strings.HasPrefix(k, "$") {
				continue
			}
			out = c.walk(levels, i+1, now, out)
		}
	default:
		if c := n.children[levels[i]]; c != nil {
			out = c.walk(levels, i+1, now, out)
		}
	}
	return out
}

func (n *retainNode) all(now int64, out []*session.Message) []*session.Message {
	if n.msg != nil && !n.msg.Expired(now) {
		out = append(out, n.msg)
	}
	for _, c := range n.children {
		out = c.all(now, out)
	}
	return out
}
