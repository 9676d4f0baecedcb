package broker

import (
	"maps"
	"sync"
	"time"

	"gatemq/boltstore"
	"gatemq/internal/topic"
	"gatemq/session"
)

// A pubsub rule's messages reach every subscriber from the store. Each
// client ID has a read position in every stream that may hold them,
// kept in the store whether its session is clean or persistent, so a
// client that connects again, with a clean session too, gets what was
// published after its position, then live traffic, in commit order and
// without duplicates at the seam (both come the same way).
//
// The position is the client ID's, not a filter's: while it is
// connected, streams none of its filters could match move to their
// heads, so a filter subscribed later reads from when the client was
// last connected. A client ID the store does not know (first subscribe
// to a pubsub rule's topics, or away longer than the longest retention,
// after which its positions are deleted) starts at the heads: from now.
// A stream created after a client's positions were saved is read from
// its start.
//
// A position moves past a message when the message is done for the
// client: acknowledged (PUBACK, or PUBREC for QoS 2) or sent at QoS 0.
// Positions are saved when a connection goes, as the client acknowledges
// (at most every saveEvery) and every second while it is connected,
// before SUBACK for a client new to the store, and, for a durable
// session, with its cursors before each in-flight table, so that after
// a crash a QoS 2 message comes again only as the resend of its
// in-flight entry, which the client recognises. A clean session's
// position after a crash can be saveEvery old: what it acknowledged
// since comes again.

// preader is a session's reading of the pubsub rules' streams.
type preader struct {
	// mu guards the fields below; it is taken after dstate.mu and
	// before the session's mutex.
	mu      sync.Mutex
	started bool                           // pos is loaded: the session subscribed to a pubsub rule's topics
	pos     map[boltstore.StreamKey]uint64 // read position: records at or below it are done or taken
	skip    map[boltstore.RecordID]bool    // in flight when restored: never read again
	saved   map[boltstore.StreamKey]uint64 // positions last written, nil before the first write
	savedAt time.Time                      // when they were
}

// saveEvery is how often, at most, acknowledgements save the positions
// of a session that is not durable: after a crash, the QoS 1 and 2
// messages acknowledged since come again.
const saveEvery = 100 * time.Millisecond

func preaderOf(sess *session.Session) *preader {
	pr, _ := sess.Offline().(*preader)
	return pr
}

// attachPubsub gives sess a pubsub reader, not started, when the server
// has pubsub rules. It runs before the session's writer can run: in
// openSession, and at restore.
func (s *Server) attachPubsub(sess *session.Session) {
	if s.offline != nil && s.offline.pubsub && sess.Offline() == nil {
		sess.SetOffline(&preader{skip: make(map[boltstore.RecordID]bool)})
	}
}

// startPubsub loads the positions of sess's client ID once the session
// has a subscription that may match a pubsub rule's topics. It runs on
// the session's reader (SUBSCRIBE) before SUBACK, or at restore. It
// returns the reader of a client new to the store, whose positions (from
// now) the caller must save before SUBACK: after a crash the client must
// not count as new again, and start past messages published since it
// subscribed.
func (s *Server) startPubsub(sess *session.Session) (newClient *preader) {
	pr := preaderOf(sess)
	if pr == nil {
		return nil
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.started || !s.offline.anyPubsub(ordinaryFilters(sess.Subscriptions())) {
		return nil
	}
	pos, known := s.offline.pendingPositions(sess.ClientID)
	if !known {
		var err error
		if pos, known, err = s.opts.Store.LoadPositions(sess.ClientID); err != nil {
			s.log.Error("pubsub positions unreadable: starting from now", logClientID, sess.ClientID, logErr, err)
		}
	}
	if !known || pos == nil {
		// A client the store does not know: from now.
		pos = make(map[boltstore.StreamKey]uint64)
		for _, si := range s.opts.Store.Streams(s.offline.pubsubStream) {
			pos[si.Key] = si.Head
		}
	}
	pr.pos, pr.started = pos, true
	if known {
		return nil
	}
	return pr
}

// anyPubsub reports whether one of filters may match a pubsub rule's
// topics.
func (o *offline) anyPubsub(filters []session.Subscription) bool {
	for _, r := range o.rules {
		if r.Mode != OfflinePubsub {
			continue
		}
		for _, f := range filters {
			if topic.Overlap(f.Filter, r.Filter) {
				return true
			}
		}
	}
	return false
}

// ordinaryFilters returns the subscriptions that are not shared.
func ordinaryFilters(subs []session.Subscription) []session.Subscription {
	out := subs[:0:0]
	for _, sub := range subs {
		if _, _, shared := splitShared(sub.Filter); !shared {
			out = append(out, sub)
		}
	}
	return out
}

// refillPubsub queues the pubsub messages past the session's position
// that its filters match, up to the read-ahead. It runs on the
// connection's writer goroutine before Next.
func (s *Server) refillPubsub(sess *session.Session, pr *preader, subs []session.Subscription) {
	want := s.durableBatch() - sess.QueueLen()
	if want <= 0 {
		return
	}
	filters := ordinaryFilters(subs)
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if !pr.started {
		return
	}
	var read []boltstore.StreamInfo
	for _, si := range s.opts.Store.Streams(s.offline.pubsubStream) {
		if _, ok := pr.pos[si.Key]; !ok {
			pr.pos[si.Key] = 0 // created since the position was saved
		}
		if !anyMayMatch(filters, si.Pattern) {
			pr.pos[si.Key] = si.Head // nothing in it for this client
			continue
		}
		read = append(read, si)
	}
	now := time.Now().UnixNano()
	s.readStreams(read, pr.pos, pr.skip, want, func(r *boltstore.Record, m *session.Message) bool {
		rule := s.offline.ruleFor(m.Topic, m.QoS)
		if rule == nil || rule.Mode != OfflinePubsub || (rule.Retention > 0 && now-r.Time > int64(rule.Retention)) {
			return false
		}
		d, ok := deliveryFor(m, sess.ClientID, filters)
		if !ok {
			return false
		}
		d.Ref, d.Src = r.ID, session.FromPubsub
		sess.Enqueue(d)
		return true
	})
}

// savePositions writes the session's positions when they changed since
// they were last written, or always with force (which also renews the
// time the client was last seen, for PrunePositions): each held back
// below the pubsub messages the session has queued or in flight, not yet
// received. done (may be nil) is called after the commit. Positions of
// streams the store dropped are forgotten.
func (s *Server) savePositions(sess *session.Session, pr *preader, force bool, done func(error)) {
	pr.mu.Lock()
	defer pr.mu.Unlock() // snapshots reach the store in the order they are taken
	if !pr.started {
		if done != nil {
			done(nil)
		}
		return
	}
	live := s.opts.Store.Streams(s.offline.pubsubStream)
	pos := make(map[boltstore.StreamKey]uint64, len(live))
	for _, si := range live {
		if p, ok := pr.pos[si.Key]; ok {
			pos[si.Key] = p
		}
	}
	maps.DeleteFunc(pr.pos, func(k boltstore.StreamKey, _ uint64) bool { _, ok := pos[k]; return !ok })
	for _, ref := range sess.RefsFrom(session.FromPubsub, false) {
		if p, ok := pos[ref.StreamKey]; ok && ref.Seq-1 < p {
			pos[ref.StreamKey] = ref.Seq - 1
		}
	}
	if !force && pr.saved != nil && maps.Equal(pos, pr.saved) {
		if done != nil {
			done(nil)
		}
		return
	}
	pr.saved, pr.savedAt = pos, time.Now()
	sp := s.offline.savingPositions(sess.ClientID, pos)
	s.opts.Store.PutPositions(sess.ClientID, pos, func(err error) {
		s.offline.savedPositions(sess.ClientID, sp)
		if err != nil {
			s.log.Error("save pubsub positions", logClientID, sess.ClientID, logErr, err)
		}
		if done != nil {
			done(err)
		}
	})
}

// ackedPubsub runs after the client of sess, a session that is not
// durable, acknowledged a pubsub message: its positions are saved when
// they were not for saveEvery.
func (s *Server) ackedPubsub(sess *session.Session) {
	pr := preaderOf(sess)
	if pr == nil {
		return
	}
	pr.mu.Lock()
	due := pr.started && time.Since(pr.savedAt) >= saveEvery
	pr.mu.Unlock()
	if due {
		s.savePositions(sess, pr, false, nil)
	}
}

// savingPos is a client's positions on their way to the store.
type savingPos struct {
	pos map[boltstore.StreamKey]uint64
}

// savingPositions records positions on their way to the store, so that
// a new session of the client (a clean session connecting again at once)
// starts from them, not from what the store held before.
func (o *offline) savingPositions(clientID string, pos map[boltstore.StreamKey]uint64) *savingPos {
	sp := &savingPos{pos: pos}
	o.mu.Lock()
	o.saving[clientID] = sp
	o.mu.Unlock()
	return sp
}

// savedPositions forgets positions once committed, unless newer ones
// are on their way.
func (o *offline) savedPositions(clientID string, sp *savingPos) {
	o.mu.Lock()
	if o.saving[clientID] == sp {
		delete(o.saving, clientID)
	}
	o.mu.Unlock()
}

// pendingPositions returns a copy of the client's positions on their
// way to the store, if any.
func (o *offline) pendingPositions(clientID string) (map[boltstore.StreamKey]uint64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if sp, ok := o.saving[clientID]; ok {
		return maps.Clone(sp.pos), true
	}
	return nil, false
}
