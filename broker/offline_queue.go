package broker

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"gatemq/boltstore"
	"gatemq/internal/topic"
	"gatemq/session"
)

// A queue rule's messages each go to exactly one consumer: a session,
// clean or persistent, of any protocol version, with a subscription
// granted QoS 1 or 2 (ordinary or shared) that matches the message's
// topic. Consumers pull: a consumer's writer takes, before each write,
// as many waiting messages as its window has room for (its Receive
// Maximum and max_inflight, less what it has in flight and queued), so
// the queue is shared by availability. A message stays in the queue
// until its consumer acknowledges it: PUBACK, or PUBREC for QoS 2 (from
// then on the consumer holds the message, and handing it to another
// would deliver it twice).
//
// A message handed out and not acknowledged goes back to the queue when
// its consumer's session ends (a clean session when its connection
// goes), or, if it was still queued in the session and not sent, when
// the connection goes. One in flight to a persistent session stays with
// it and is sent again, with DUP and its packet identifier, when the
// client returns, so a QoS 2 consumer gets it exactly once.
//
// # Storage
//
// The messages are records of the generation files, appended before
// the publisher is acknowledged. The queue's index (boltstore's
// LoadQueue) lists the waiting ones, and for each stream how far it has
// indexed: an entry is added after the record's commit and removed when
// it is consumed. A crash between a record's commit and its entry's
// loses nothing: at start the queue reads its streams past the index
// positions and adds what it finds. A durable consumer's in-flight table
// names the queue messages it holds, so after a crash they go back to
// it, not to another consumer. A queue's messages live no longer than
// the store keeps their generation (message_retention_period).
//
// # Concurrency
//
// queue.mu guards the queue's fields. It is taken before a session's
// mutex (pull queues deliveries into the session with it held), never
// after, and never across a store read or commit.

// maxScan bounds how many waiting messages one pull looks at for a
// consumer whose filters match only some of the queue's topics.
const maxScan = 4096

// queue is the in-memory state of one queue rule.
type queue struct {
	rule *offlineRule

	// mu guards the fields below.
	mu        sync.Mutex
	pending   []*qentry                     // waiting, oldest first
	held      map[boltstore.RecordID]*qhold // handed out, not acknowledged
	count     int                           // pending + held + reserved (appends not committed yet)
	bytes     int64                         // their payload bytes
	consumers map[*session.Session]bool     // sessions that took or may take from the queue
}

// qentry is one message of a queue.
type qentry struct {
	id      boltstore.RecordID
	topic   string
	from    string // publisher, for no-local subscriptions
	size    int
	time    int64 // when it was stored, unix ns
	expires int64 // v5 message expiry, unix ns; 0 for none
}

// qhold is a message handed out to a session.
type qhold struct {
	e    *qentry
	sess *session.Session
	// queued is set once the delivery is in the session; before that
	// it is on its way (pull reads the record) and sweep leaves it be.
	queued bool
}

func newQueue(r *offlineRule) *queue {
	return &queue{rule: r, held: make(map[boltstore.RecordID]*qhold), consumers: make(map[*session.Session]bool)}
}

// reserve counts a message about to be stored, and reports false when
// the queue is full.
func (q *queue) reserve(size int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count >= q.rule.MaxMessages || (q.rule.MaxBytes > 0 && q.bytes+int64(size) > q.rule.MaxBytes) {
		return false
	}
	q.count++
	q.bytes += int64(size)
	return true
}

// unreserve releases a reservation whose message was not stored.
func (q *queue) unreserve(size int) {
	q.mu.Lock()
	q.count--
	q.bytes -= int64(size)
	q.mu.Unlock()
}

// add makes a committed message wait in the queue (its reservation
// becomes the entry), records it in the index and wakes the consumers.
// It runs on the store's writer goroutine.
func (q *queue) add(s *Server, e *qentry) {
	s.opts.Store.QueueAdd(q.rule.Filter, []boltstore.RecordID{e.id}, nil)
	q.mu.Lock()
	q.pending = append(q.pending, e)
	wake := q.consumersLocked()
	q.mu.Unlock()
	wakeAll(wake)
}

func (q *queue) consumersLocked() []*session.Session {
	out := make([]*session.Session, 0, len(q.consumers))
	for sess := range q.consumers {
		out = append(out, sess)
	}
	return out
}

func wakeAll(sessions []*session.Session) {
	for _, sess := range sessions {
		sess.Wake()
	}
}

// register records sess as a consumer when one of its filters may match
// the queue's topics, so that it is woken when messages come.
func (q *queue) register(sess *session.Session, filters []session.Subscription) bool {
	if !q.mayConsume(filters) {
		return false
	}
	q.mu.Lock()
	q.consumers[sess] = true
	q.mu.Unlock()
	return true
}

func (q *queue) mayConsume(filters []session.Subscription) bool {
	for _, f := range filters {
		if topic.Overlap(f.Filter, q.rule.Filter) {
			return true
		}
	}
	return false
}

// wants reports whether sess consumes from the queue and messages are
// waiting.
func (q *queue) wants(sess *session.Session) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.consumers[sess] && len(q.pending) > 0
}

// pull hands up to room waiting messages that filters match and that
// canReceive allows to sess, a consumer with a connection attached,
// oldest first. It runs on the session's writer goroutine.
func (q *queue) pull(s *Server, sess *session.Session, filters []session.Subscription, room int, canReceive func(string) bool) {
	if !q.register(sess, filters) {
		return
	}
	q.mu.Lock()
	var take []*qentry
	scanned := 0
	kept := q.pending[:0]
	for i, e := range q.pending {
		if len(take) == room || scanned == maxScan {
			kept = append(kept, q.pending[i:]...)
			break
		}
		scanned++
		if !consumes(filters, e, sess.ClientID) || !canReceive(e.topic) {
			kept = append(kept, e)
			continue
		}
		take = append(take, e)
		q.held[e.id] = &qhold{e: e, sess: sess}
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	q.mu.Unlock()
	if len(take) == 0 {
		return
	}

	// Read the messages without the lock, then queue them.
	now := time.Now().UnixNano()
	ds := make([]session.Delivery, 0, len(take))
	var gone []*qentry
	for _, e := range take {
		recs, err := s.opts.Store.Read(e.id.StreamKey, e.id.Seq-1, 1, nil, func(id boltstore.RecordID, err error) {
			s.log.Error("corrupt stored message skipped", "record", id.String(), logErr, err)
		})
		var m *session.Message
		if err == nil && len(recs) == 1 && recs[0].ID == e.id {
			m, err = session.DecodeMessage(recs[0].Topic, recs[0].Meta, recs[0].Payload)
		}
		if m == nil || err != nil || m.Expired(now) {
			gone = append(gone, e) // dropped by retention, corrupt or expired: done
			continue
		}
		d, _ := deliveryFor(m, sess.ClientID, filters)
		d.Ref, d.Src = e.id, session.FromQueue
		ds = append(ds, d)
	}
	q.mu.Lock()
	for _, d := range ds {
		if h := q.held[d.Ref]; h != nil && h.sess == sess {
			h.queued = true
			sess.Enqueue(d)
		}
	}
	q.mu.Unlock()
	q.remove(s, sess, gone)
}

// consumes reports whether one of filters takes e for the session
// clientID.
func consumes(filters []session.Subscription, e *qentry, clientID string) bool {
	for _, f := range filters {
		if topicMatches(f.Filter, e.topic) && !(f.NoLocal && e.from == clientID) {
			return true
		}
	}
	return false
}

// remove takes messages handed to sess out of the queue for good:
// consumed, discarded or gone. One no longer held by sess (given back
// meanwhile, or already removed) stays as it is.
func (q *queue) remove(s *Server, sess *session.Session, es []*qentry) {
	if len(es) == 0 {
		return
	}
	ids := make([]boltstore.RecordID, 0, len(es))
	q.mu.Lock()
	for _, e := range es {
		if h := q.held[e.id]; h != nil && h.sess == sess {
			delete(q.held, e.id)
			q.dropLocked(h.e)
			ids = append(ids, e.id)
		}
	}
	q.mu.Unlock()
	if len(ids) > 0 {
		s.opts.Store.QueueRemove(q.rule.Filter, ids, nil)
	}
}

// dropLocked uncounts a message leaving the queue.
func (q *queue) dropLocked(e *qentry) {
	q.count--
	q.bytes -= int64(e.size)
}

// ack consumes the message ref that sess acknowledged, if the queue
// handed it to sess.
func (q *queue) ack(s *Server, sess *session.Session, ref boltstore.RecordID) {
	q.remove(s, sess, []*qentry{{id: ref}})
}

// release puts messages handed out back in the queue, in the order they
// were stored, and wakes the consumers.
func (q *queue) releaseLocked(es []*qentry) []*session.Session {
	if len(es) == 0 {
		return nil
	}
	for _, e := range es {
		delete(q.held, e.id)
	}
	q.pending = append(q.pending, es...)
	slices.SortStableFunc(q.pending, func(a, b *qentry) int { return cmp.Compare(a.time, b.time) })
	return q.consumersLocked()
}

// detached gives back the messages handed to sess that were still queued
// in it when its connection went (back, from Session.TakeQueued), and
// stops waking it.
func (q *queue) detached(s *Server, sess *session.Session, back []session.Delivery) {
	q.mu.Lock()
	delete(q.consumers, sess)
	var es []*qentry
	for _, d := range back {
		if h := q.held[d.Ref]; h != nil && h.sess == sess {
			es = append(es, h.e)
		}
	}
	wake := q.releaseLocked(es)
	q.mu.Unlock()
	wakeAll(wake)
}

// ended gives back every message handed to sess, a session that ended.
func (q *queue) ended(s *Server, sess *session.Session) {
	q.mu.Lock()
	delete(q.consumers, sess)
	var es []*qentry
	for _, h := range q.held {
		if h.sess == sess {
			es = append(es, h.e)
		}
	}
	wake := q.releaseLocked(es)
	q.mu.Unlock()
	wakeAll(wake)
}

// sweep checks, once a second, what the queue handed out: a message
// whose session is gone from the broker goes back to the queue, and one
// its session no longer holds was discarded by it (expired while
// queued, too large for the client, refused by the ACL) and is done.
// Waiting messages that expired, or whose generation the store dropped,
// are removed.
func (q *queue) sweep(s *Server, live map[boltstore.Gen]bool) {
	now := time.Now().UnixNano()
	q.mu.Lock()
	bySess := make(map[*session.Session][]*qentry)
	for _, h := range q.held {
		if h.queued {
			bySess[h.sess] = append(bySess[h.sess], h.e)
		}
	}
	var gone []boltstore.RecordID
	kept := q.pending[:0]
	dropped := 0
	for _, e := range q.pending {
		switch {
		case !live[e.id.Gen]:
			dropped++
		case e.expires != 0 && now >= e.expires:
		default:
			kept = append(kept, e)
			continue
		}
		gone = append(gone, e.id)
		q.dropLocked(e)
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	q.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("queued messages dropped with their generation", logTopic, q.rule.Filter, "messages", dropped)
	}
	if len(gone) > 0 {
		s.opts.Store.QueueRemove(q.rule.Filter, gone, nil)
	}

	for sess, es := range bySess {
		if s.sessions.Get(sess.ClientID) != sess {
			q.ended(s, sess)
			continue
		}
		has := make(map[boltstore.RecordID]bool)
		for _, ref := range sess.RefsFrom(session.FromQueue, true) {
			has[ref] = true
		}
		var done []*qentry
		for _, e := range es {
			if !has[e.id] {
				done = append(done, e)
			}
		}
		q.remove(s, sess, done)
	}
}

// restore rebuilds the queue from the store at start: the index's
// entries, then what its streams hold past the index positions (records
// committed before a crash kept their entries from being written). A
// queue seen for the first time starts empty, at the heads of its
// streams. held maps the records that restored durable sessions have in
// flight to those sessions.
func (q *queue) restore(s *Server, held map[boltstore.RecordID]*session.Session) error {
	st := s.opts.Store
	name := q.rule.Filter
	state, err := st.LoadQueue(name)
	if err != nil {
		return err
	}
	streams := st.Streams(func(p string) bool { return filterMayMatchPattern(name, p) })
	index := make(map[boltstore.StreamKey]uint64, len(streams))
	if !state.Exists {
		// Committed before the first message can come: after a crash
		// the queue must not start again at the heads, past messages
		// acknowledged to their publishers.
		for _, si := range streams {
			index[si.Key] = si.Head
		}
		return commitSync(func(done func(error)) { st.SetQueueIndex(name, index, done) })
	}
	var es []*qentry
	var gone []boltstore.RecordID
	for _, id := range state.Entries {
		recs, err := st.Read(id.StreamKey, id.Seq-1, 1, nil, nil)
		if err != nil || len(recs) != 1 || recs[0].ID != id {
			gone = append(gone, id)
			continue
		}
		e, _ := q.entryOf(&recs[0])
		es = append(es, e)
	}
	// Records past the index positions: committed, their entries not.
	var found []boltstore.RecordID
	for _, si := range streams {
		pos := state.Indexed[si.Key]
		for pos < si.Head {
			recs, err := st.Read(si.Key, pos, 1024, nil, nil)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				break // the rest failed its checksum
			}
			for i := range recs {
				r := &recs[i]
				pos = r.ID.Seq
				if e, ok := q.entryOf(r); ok && topicMatches(name, r.Topic) {
					es = append(es, e)
					found = append(found, r.ID)
				} // else another topic of the stream, or QoS 0
			}
		}
		index[si.Key] = max(pos, state.Indexed[si.Key])
	}
	if len(found) > 0 {
		st.QueueAdd(name, found, nil)
	}
	if len(gone) > 0 {
		st.QueueRemove(name, gone, nil)
	}
	if err := commitSync(func(done func(error)) { st.SetQueueIndex(name, index, done) }); err != nil {
		return err
	}
	slices.SortStableFunc(es, func(a, b *qentry) int { return cmp.Compare(a.time, b.time) })

	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range es {
		q.count++
		q.bytes += int64(e.size)
		if sess := held[e.id]; sess != nil {
			q.held[e.id] = &qhold{e: e, sess: sess, queued: true}
		} else {
			q.pending = append(q.pending, e)
		}
	}
	s.log.Info("restored queue", logTopic, name, "messages", len(es), "in_flight", len(q.held), "recovered", len(found))
	return nil
}

// entryOf returns the queue entry of a stored record, and whether the
// record is a QoS 1 or 2 message (what a queue holds).
func (q *queue) entryOf(r *boltstore.Record) (*qentry, bool) {
	e := &qentry{id: r.ID, topic: r.Topic, size: len(r.Payload), time: r.Time}
	m, err := session.DecodeMessage(r.Topic, r.Meta, nil)
	if err != nil {
		return e, false
	}
	e.from, e.expires = m.From, m.Expires
	return e, m.QoS > 0
}
