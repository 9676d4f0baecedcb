package boltstore

import "strings"

// maxFanout is how many distinct values a topic level may take before new
// values at that level share one wildcard stream: "sensors/1/temp" to
// "sensors/16/temp" get streams of their own, "sensors/17/temp" and later
// ones share "sensors/+/temp".
const maxFanout = 16

// maxTopicCache bounds the topic-to-stream cache of a generation.
const maxTopicCache = 1 << 16

// learner maps topics to streams for one generation by learning the
// topic structure: a level with many distinct values becomes a "+". It
// is owned by the writer goroutine, except patterns, which readers
// reach through the store's lock.
type learner struct {
	root      lnode
	byPattern map[string]StreamID
	patterns  []string // StreamID-1 -> pattern
	persisted []bool   // StreamID-1 -> its pattern is in the file
	cache     map[string]StreamID
}

type lnode struct {
	children map[string]*lnode
	wild     *lnode
}

func newLearner() *learner {
	return &learner{byPattern: make(map[string]StreamID), cache: make(map[string]StreamID)}
}

// add records a pattern read back from a generation file.
func (l *learner) add(id StreamID, pattern string) {
	for int(id) > len(l.patterns) {
		l.patterns = append(l.patterns, "")
		l.persisted = append(l.persisted, false)
	}
	l.patterns[id-1] = pattern
	l.persisted[id-1] = true
	l.byPattern[pattern] = id
	n := &l.root
	for level := range strings.SplitSeq(pattern, "/") {
		n = n.child(level, true)
	}
}

func (n *lnode) child(level string, create bool) *lnode {
	if level == "+" {
		if n.wild == nil && create {
			n.wild = &lnode{}
		}
		return n.wild
	}
	c := n.children[level]
	if c == nil && create {
		if n.children == nil {
			n.children = make(map[string]*lnode)
		}
		c = &lnode{}
		n.children[level] = c
	}
	return c
}

// stream returns the stream of topic, and whether its pattern is new.
func (l *learner) stream(topic string) (id StreamID, pattern string, isNew bool) {
	if id, ok := l.cache[topic]; ok {
		return id, l.patterns[id-1], false
	}
	var b strings.Builder
	n := &l.root
	for i, level := range strings.Split(topic, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if c := n.children[level]; c != nil {
			n = c
			b.WriteString(level)
		} else if len(n.children) < maxFanout && level != "+" {
			n = n.child(level, true)
			b.WriteString(level)
		} else {
			n = n.child("+", true)
			b.WriteByte('+')
		}
	}
	pattern = b.String()
	id, ok := l.byPattern[pattern]
	if !ok {
		l.patterns = append(l.patterns, pattern)
		l.persisted = append(l.persisted, false)
		id = StreamID(len(l.patterns))
		l.byPattern[pattern] = id
		isNew = true
	}
	if len(l.cache) >= maxTopicCache {
		clear(l.cache)
	}
	l.cache[topic] = id
	return id, pattern, isNew
}

// markPersisted records that every pattern is in the file.
func (l *learner) markPersisted() {
	for i := range l.persisted {
		l.persisted[i] = true
	}
}
