package broker

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// The retained messages as the admin API and `gatemq retained` show and
// delete them.

// RetainedMessage is a retained message with its payload and the v5
// properties forwarded with it.
type RetainedMessage struct {
	RetainedInfo
	Payload []byte
	Props   packet.Properties
}

// ErrInvalidTopic is returned, wrapped, for a topic name or filter that
// cannot name retained messages.
var ErrInvalidTopic = errors.New("mqtt: invalid topic")

// retainedMessage describes a stored retained message.
func retainedMessage(m *session.Message, at int64) RetainedMessage {
	rm := RetainedMessage{RetainedInfo: RetainedInfo{Topic: m.Topic, QoS: m.QoS, Bytes: len(m.Payload), From: m.From},
		Payload: m.Payload, Props: m.Properties()}
	if m.Expires != 0 {
		rm.Expires = time.Unix(0, m.Expires).UTC()
	}
	if at != 0 {
		rm.Stored = time.Unix(0, at).UTC()
	}
	return rm
}

// each calls fn for every message of the tree below n, with when it was
// stored.
func (n *retainNode) each(fn func(m *session.Message, at int64)) {
	if n.msg != nil {
		fn(n.msg, n.at)
	}
	for _, c := range n.children {
		c.each(fn)
	}
}

// RetainedMatching returns the retained messages that have not expired
// and whose topics match filter ("" for all but the $ topics, as "#"),
// by topic, without their payloads.
func (s *Server) RetainedMatching(filter string) ([]RetainedInfo, error) {
	if filter != "" {
		if err := packet.ValidTopicFilter(filter); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidTopic, err)
		}
	}
	now := time.Now().UnixNano()
	var out []RetainedInfo
	s.retained.mu.RLock()
	s.retained.root.each(func(m *session.Message, at int64) {
		// No filter lists what "#" would, so not the $SYS topics the
		// broker keeps retained [MQTT-4.7.2-1]: "$SYS/#" lists those.
		if !m.Expired(now) && (filter == "" && !strings.HasPrefix(m.Topic, "$") || filter != "" && topicMatches(filter, m.Topic)) {
			out = append(out, retainedMessage(m, at).RetainedInfo)
		}
	})
	s.retained.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

// RetainedMessage returns the retained message of topic, with its
// payload, and reports whether there is one that has not expired.
func (s *Server) RetainedMessage(topic string) (RetainedMessage, bool) {
	if packet.ValidTopicName(topic) != nil {
		return RetainedMessage{}, false
	}
	now := time.Now().UnixNano()
	s.retained.mu.RLock()
	defer s.retained.mu.RUnlock()
	n := s.retained.root.find(topic)
	if n == nil || n.msg == nil || n.msg.Expired(now) {
		return RetainedMessage{}, false
	}
	return retainedMessage(n.msg, n.at), true
}

// find returns the node of topic, or nil.
func (n *retainNode) find(topic string) *retainNode {
	for level := range strings.SplitSeq(topic, "/") {
		if n = n.children[level]; n == nil {
			return nil
		}
	}
	return n
}

// DeleteRetained removes the retained message of topic from memory and
// from the store, as a retained PUBLISH with an empty payload would, and
// reports whether there was one. It returns once the store has committed
// the deletion.
func (s *Server) DeleteRetained(topic string) (bool, error) {
	if err := packet.ValidTopicName(topic); err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidTopic, err)
	}
	errc := make(chan error, 1)
	w := &storeWait{done: storedFunc(func(err error) { errc <- err })}
	m := &session.Message{Topic: topic}
	s.retained.mu.Lock()
	had := s.retained.setLocked(m, 0)
	// Written even when memory had none: an expired message is still
	// in the store until something replaces it.
	s.persistRetained(m, 0, nil, w)
	s.retained.mu.Unlock()
	if w.started() {
		if err := <-errc; err != nil {
			return had, fmt.Errorf("delete retained message from the store: %w", err)
		}
	}
	if had {
		s.log.Info("retained message deleted", logTopic, topic)
	}
	return had, nil
}

// DecodeStoredRetained decodes a retained message as the store keeps it
// (boltstore's LoadRetained values): the command line reads a stopped
// broker's store with it.
func DecodeStoredRetained(topic string, value []byte) (RetainedMessage, error) {
	m, at, err := decodeRetained(topic, value)
	if err != nil {
		return RetainedMessage{}, err
	}
	return retainedMessage(m, at), nil
}
