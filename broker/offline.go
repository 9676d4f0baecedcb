package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"gatemq/boltstore"
	"gatemq/session"
)

// Offline message rules ([[offline]] in the configuration): QoS 1 and 2
// messages published on a rule's topics are written to the store whatever
// their subscribers, and acknowledged to the publisher after the commit,
// like messages for durable sessions. Every subscriber then reads them
// from the store, never from memory, so there is one path and no seam
// between what was stored while a client was away and live traffic:
//
//   - pubsub (offline_pubsub.go): each client ID has a read position in
//     the rules' streams, kept in the store whether its session is clean
//     or persistent, and gets everything after it, in commit order.
//   - queue (offline_queue.go): each message goes to exactly one
//     subscriber with QoS > 0, and is kept until that subscriber has
//     acknowledged it (PUBACK, or PUBREC for QoS 2).
//
// QoS 0 messages on a rule's topics are routed as any other.

// OfflineMode is how an offline rule delivers its messages.
type OfflineMode uint8

// Offline modes.
const (
	OfflinePubsub OfflineMode = iota + 1 // one-to-many, from each client ID's stored position
	OfflineQueue                         // one-to-one: each message to exactly one subscriber
)

func (m OfflineMode) String() string {
	switch m {
	case OfflinePubsub:
		return "pubsub"
	case OfflineQueue:
		return "queue"
	}
	return "invalid"
}

// OfflineRule is one offline message rule. Filters of two rules must not
// match a common topic (conf checks it).
type OfflineRule struct {
	// Filter is the topic filter of the rule.
	Filter string
	// Mode is how its messages are delivered.
	Mode OfflineMode
	// MaxMessages caps the messages a queue holds, waiting or in
	// flight; a publish beyond it is refused. Default 10000.
	MaxMessages int
	// MaxBytes caps the payload bytes a queue holds; 0 means no cap.
	MaxBytes int64
	// Retention is how long a pubsub rule's messages are delivered after
	// they were stored; 0 means as long as the store keeps them.
	Retention time.Duration
}

// errQueueFull refuses a message that would take a queue over its caps.
var errQueueFull = fmt.Errorf("offline queue full: %w", boltstore.ErrQuota)

// offline holds the server's offline rules; nil when it has none.
type offline struct {
	rules  []*offlineRule
	queues []*queue
	pubsub bool // some rule is a pubsub one
	// keep is how long a client's pubsub positions are kept after it
	// was last seen: the longest retention (0: for ever).
	keep   time.Duration
	pruned time.Time // last pruning of positions (the first tick prunes); offlineTick's

	// mu guards saving; it is a leaf.
	mu     sync.Mutex
	saving map[string]*savingPos // pubsub positions not committed yet, by client ID
}

type offlineRule struct {
	OfflineRule
	q *queue // set for a queue rule
}

func newOffline(rules []OfflineRule) *offline {
	if len(rules) == 0 {
		return nil
	}
	o := &offline{saving: make(map[string]*savingPos)}
	for _, r := range rules {
		or := &offlineRule{OfflineRule: r}
		if r.Mode == OfflineQueue {
			if or.MaxMessages <= 0 {
				or.MaxMessages = 10000
			}
			or.q = newQueue(or)
			o.queues = append(o.queues, or.q)
		} else {
			o.pubsub = true
			o.keep = max(o.keep, r.Retention)
		}
		o.rules = append(o.rules, or)
	}
	return o
}

// ruleFor returns the rule a message on topic with qos follows, or nil.
func (o *offline) ruleFor(topic string, qos byte) *offlineRule {
	if o == nil || qos == 0 {
		return nil
	}
	for _, r := range o.rules {
		if topicMatches(r.Filter, topic) {
			return r
		}
	}
	return nil
}

// claims reports whether m is delivered by an offline rule, not by the
// routing of durable sessions.
func (o *offline) claims(m *session.Message) bool { return o.ruleFor(m.Topic, m.QoS) != nil }

// pubsubStream reports whether a stream with pattern may hold messages
// of a pubsub rule.
func (o *offline) pubsubStream(pattern string) bool {
	for _, r := range o.rules {
		if r.Mode == OfflinePubsub && filterMayMatchPattern(r.Filter, pattern) {
			return true
		}
	}
	return false
}

// routeFor routes m as route does, unless it follows the offline rule r
// (nil for none). Then nothing is delivered from memory: the message is
// stored, and the subscribers of a pubsub rule that read it (ordinary
// subscriptions, any session) come back in durables.readers, to be woken
// after the commit; a queue wakes its own consumers. Shared
// subscriptions to a pubsub rule's topics work as usual. n is at least
// 1: the rule keeps the message.
func (s *Server) routeFor(m *session.Message, r *offlineRule) (n int, durables durableTargets) {
	switch {
	case r == nil:
		return s.route(m)
	case r.Mode == OfflineQueue:
		return 1, durableTargets{}
	}
	n, durables = s.routeVia(m, true)
	return max(n, 1), durables
}

// stored is called on the store's writer goroutine once a message of
// rule r is committed as id (or failed with err).
func (s *Server) offlineStored(r *offlineRule, m *session.Message, size int, id boltstore.RecordID, err error) {
	if r.q == nil {
		return
	}
	if err != nil {
		r.q.unreserve(size)
		return
	}
	r.q.add(s, &qentry{id: id, topic: m.Topic, from: m.From, size: size, time: time.Now().UnixNano(), expires: m.Expires})
}

// fillOffline gives an attached session, on its connection's writer
// goroutine before Next, what the offline rules have for it: pubsub
// messages past its position, and queue messages it has room for and
// that the ACL lets it receive (canReceive): a queue message is not
// used up by a consumer that may not read it.
func (s *Server) fillOffline(sess *session.Session, canReceive func(topic string) bool) {
	o := s.offline
	if o == nil {
		return
	}
	subs := sess.Subscriptions()
	if pr := preaderOf(sess); pr != nil {
		s.refillPubsub(sess, pr, subs)
	}
	if len(o.queues) == 0 {
		return
	}
	consumer := consumerFilters(subs)
	if len(consumer) == 0 {
		return
	}
	for _, q := range o.queues {
		room := sess.Room()
		if room <= 0 {
			// Counted as a consumer all the same: an acknowledgement
			// opens the window (afterAck).
			q.register(sess, consumer)
			continue
		}
		q.pull(s, sess, consumer, room, canReceive)
	}
}

// consumerFilters returns the subscriptions that may consume queue
// messages: those granted QoS 1 or 2, shared ones with their
// $share/{group}/ prefix taken off.
func consumerFilters(subs []session.Subscription) []session.Subscription {
	var out []session.Subscription
	for _, sub := range subs {
		if sub.QoS == 0 {
			continue
		}
		if _, f, ok := splitShared(sub.Filter); ok {
			sub.Filter = f
			sub.NoLocal = false
		}
		out = append(out, sub)
	}
	return out
}

// afterAck runs on a connection's reader after an acknowledgement from
// its client: a queue message acknowledged is consumed, a pubsub one
// may save the client's positions, and a consumer whose window opened
// while a queue has messages waiting is woken to take more.
func (s *Server) afterAck(c *conn, ref boltstore.RecordID, src session.Source) {
	o := s.offline
	if o == nil {
		return
	}
	if src == session.FromPubsub && !c.sess.IsDurable() {
		s.ackedPubsub(c.sess)
	}
	more := false
	for _, q := range o.queues {
		if src == session.FromQueue {
			q.ack(s, c.sess, ref)
		}
		more = more || q.wants(c.sess)
	}
	if more {
		c.signal()
	}
}

// offlineDetached runs when a session's connection is gone: queue
// messages handed to it but not sent go back to their queue, and its
// pubsub position is saved.
func (s *Server) offlineDetached(sess *session.Session) {
	o := s.offline
	if o == nil {
		return
	}
	if len(o.queues) > 0 {
		back := sess.TakeQueued(session.FromQueue)
		for _, q := range o.queues {
			q.detached(s, sess, back)
		}
	}
	if pr := preaderOf(sess); pr != nil {
		s.savePositions(sess, pr, true, nil)
	}
}

// offlineEnded runs when a session ends: the queue messages it held go
// back to their queues.
func (s *Server) offlineEnded(sess *session.Session) {
	if s.offline == nil {
		return
	}
	for _, q := range s.offline.queues {
		q.ended(s, sess)
	}
}

// offlineTick, every second, saves the pubsub positions of sessions
// that are not durable (durable ones save theirs with their cursors),
// checks what the queues have handed out, and hourly prunes positions.
func (s *Server) offlineTick() {
	for _, sess := range s.sessions.All() {
		if pr := preaderOf(sess); pr != nil && !sess.IsDurable() {
			s.savePositions(sess, pr, false, nil)
		}
	}
	if now := time.Now(); now.Sub(s.offline.pruned) >= time.Hour {
		s.offline.pruned = now
		s.prunePositions()
	}
	if len(s.offline.queues) == 0 {
		return
	}
	live := make(map[boltstore.Gen]bool)
	for _, si := range s.opts.Store.Streams(nil) {
		live[si.Key.Gen] = true
	}
	for _, q := range s.offline.queues {
		q.sweep(s, live)
	}
}

// prunePositions deletes the pubsub positions of clients not seen for
// longer than the longest retention, and without a session: everything
// published after their positions is gone, so they start from now.
func (s *Server) prunePositions() {
	if !s.offline.pubsub || s.offline.keep <= 0 {
		return
	}
	s.opts.Store.PrunePositions(time.Now().Add(-s.offline.keep), func(id string) bool { return s.sessions.Get(id) != nil }, nil)
}

// restoreOffline rebuilds the queues from the store and gives the
// restored sessions their pubsub positions; the sessions are restored
// already, with what they had in flight.
func (s *Server) restoreOffline() error {
	o := s.offline
	if o == nil {
		return nil
	}
	held := make(map[boltstore.RecordID]*session.Session)
	for _, sess := range s.sessions.All() {
		for _, ref := range sess.RefsFrom(session.FromQueue, true) {
			held[ref] = sess
		}
		if pr := s.startPubsub(sess); pr != nil {
			if err := commitSync(func(done func(error)) { s.savePositions(sess, pr, true, done) }); err != nil {
				return fmt.Errorf("save pubsub positions of %q: %w", sess.ClientID, err)
			}
		}
	}
	var errs []error
	for _, q := range o.queues {
		if err := q.restore(s, held); err != nil {
			errs = append(errs, fmt.Errorf("restore queue %q: %w", q.rule.Filter, err))
		}
	}
	return errors.Join(errs...)
}

// commitSync runs write, a store write taking a done callback, and
// waits for its commit.
func commitSync(write func(done func(error))) error {
	errc := make(chan error, 1)
	write(func(err error) { errc <- err })
	return <-errc
}
