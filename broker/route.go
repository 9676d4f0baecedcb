package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"gatemq/boltstore"
	"gatemq/session"
)

var (
	matchPool   = sync.Pool{New: func() any { s := make([]subscriber, 0, 64); return &s }}
	readersPool = sync.Pool{New: func() any { s := make([]*session.Session, 0, 64); return &s }}
)

// publish stores m as retained when its RETAIN flag is set and routes it to
// every matching subscription. It returns the number of sessions that
// accepted it. It never blocks on a subscriber.
func (s *Server) publish(m *session.Message) int {
	n, _ := s.publishThen(m, nil)
	return n
}

// publishThen is publish for a message that may have to be stored for
// durable sessions: when it is, stored is true and onStored (which may be
// nil) is called after the commit, or with the store's error, on the
// store's writer goroutine. Durable sessions are woken after the commit
// and read the message from the store.
func (s *Server) publishThen(m *session.Message, onStored storeListener) (n int, stored bool) {
	return s.publishOnce(m, nil, onStored)
}

// publishOnce is publishThen recording once (the publisher's client ID
// and packet ID of an incoming QoS 2 message) in the same commit as the
// stored message, so that a PUBLISH resent after a crash is recognised
// and not stored again.
func (s *Server) publishOnce(m *session.Message, once []byte, onStored storeListener) (n int, stored bool) {
	meta := s.archive(m)
	var (
		job  *storeJob // made when something is written: most messages are not
		rule = s.offline.ruleFor(m.Topic, m.QoS)
	)
	if rule != nil && rule.q != nil && !rule.q.reserve(len(m.Payload)) {
		// Refused whole, as a full store refuses it: v5 0x97, 3.x closed.
		if onStored != nil {
			onStored.stored(errQueueFull)
		}
		return 0, true
	}
	if s.opts.Store != nil && m.Retain {
		job = newStoreJob(s, m, onStored)
	}
	var durables durableTargets
	if m.Retain {
		// A retained message is routed with the retained store locked:
		// a new subscription takes its retained snapshot under the same
		// lock, so it gets the message either in the snapshot or live,
		// never both and never neither.
		at := time.Now().UnixNano()
		s.retained.mu.Lock()
		s.retained.setLocked(m, at)
		meta = s.persistRetained(m, at, meta, job.waiter())
		n, durables = s.routeFor(m, rule)
		s.retained.mu.Unlock()
	} else {
		n, durables = s.routeFor(m, rule)
	}
	if k := len(durables.readers) + len(durables.shared); k > 0 || rule != nil {
		if job == nil {
			job = newStoreJob(s, m, onStored)
		}
		job.rule, job.durables = rule, durables
		job.wait.add()
		if meta == nil {
			meta = session.EncodeMeta(m)
		}
		s.opts.Store.AppendOnce(m.From, m.Topic, meta, m.Payload, once, job)
		n += k
	}
	if job == nil {
		return n, false
	}
	stored = job.wait.started()
	job.wait.finish(nil) // newStoreJob's hold: every write is added
	return n, stored
}

// newStoreJob returns a job whose wait is held until publishOnce has
// added all its writes: the retained message's write could otherwise
// commit, and answer for the message, before the message's own append
// is added.
func newStoreJob(s *Server, m *session.Message, onStored storeListener) *storeJob {
	j := &storeJob{s: s, m: m}
	j.wait.done = onStored
	j.wait.hold()
	return j
}

// storeJob is a published message on its way to the store: the durable
// sessions to wake after the commit and what waits for it, in one
// allocation.
type storeJob struct {
	s        *Server
	m        *session.Message
	rule     *offlineRule
	durables durableTargets
	wait     storeWait
}

// waiter returns the job's storeWait, or nil for no job.
func (j *storeJob) waiter() *storeWait {
	if j == nil {
		return nil
	}
	return &j.wait
}

// AppendDone implements boltstore.AppendDone: the message is committed
// (err nil) or refused.
func (j *storeJob) AppendDone(id boltstore.RecordID, err error) {
	s, w := j.s, &j.wait
	if j.rule != nil {
		s.offlineStored(j.rule, j.m, len(j.m.Payload), id, err)
	}
	if err != nil {
		s.log.Error("message not stored for durable sessions", logTopic, j.m.Topic, logErr, err)
		j.durables.release()
		w.finish(err)
		return
	}
	for _, d := range j.durables.readers {
		d.Wake()
	}
	j.durables.release()
	// A shared group's durable member gets the message assigned in the
	// store; the acknowledgement waits for that too.
	for _, member := range j.durables.shared {
		w.add()
		s.opts.Store.Assign(member.ClientID, id, func(err error) {
			if err == nil {
				member.Wake()
			}
			w.finish(err)
		})
	}
	w.finish(nil)
}

// durableTargets are the durable sessions a routed message is stored
// for: readers find it in the streams their filters match; shared-group
// members chosen for it get it assigned.
type durableTargets struct {
	readers, shared []*session.Session
	pooled          *[]*session.Session // readers' slice from readersPool
}

// release gives readers back to its pool.
func (t *durableTargets) release() {
	if t.pooled != nil {
		clear(t.readers)
		*t.pooled = t.readers[:0] // keeps what appends grew
		readersPool.Put(t.pooled)
		t.pooled, t.readers = nil, nil
	}
}

// storeListener hears the store's answer for a published message: nil
// once every write for it is committed, else the first error. It is
// called on a store goroutine and must not block.
type storeListener interface{ stored(err error) }

// storedFunc adapts a function to storeListener.
type storedFunc func(error)

func (f storedFunc) stored(err error) { f(err) }

// storeWait tells done once every store write it was given has
// committed, with the first error.
//
// Counters rather than a mutex: every durable message goes through one.
// A caller adding writes from several places holds it open (hold) until
// it has added them all, so that a write finishing early does not
// answer for the others.
type storeWait struct {
	pending atomic.Int32 // writes (and holds) not finished
	n       atomic.Int32 // writes added
	errMu   sync.Mutex   // guards err; taken only on a failure and at the end
	err     error
	done    storeListener
}

func (w *storeWait) add() {
	w.n.Add(1)
	w.pending.Add(1)
}

// hold keeps done from being called until a matching finish(nil).
func (w *storeWait) hold() { w.pending.Add(1) }

func (w *storeWait) started() bool { return w.n.Load() > 0 }

func (w *storeWait) finish(err error) {
	if err != nil {
		w.errMu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.errMu.Unlock()
	}
	if w.pending.Add(-1) == 0 && w.done != nil && w.n.Load() > 0 {
		w.errMu.Lock()
		err := w.err
		w.errMu.Unlock()
		w.done.stored(err)
	}
}

// route delivers m once to each session with a matching ordinary
// subscription, with the greatest granted QoS and every matching
// subscription identifier [MQTT-3.3.4-2..5], and once to one member of
// each matching shared group.
//
// A durable session is not given the message when it is to be stored
// (QoS > 0, or QoS 0 with QueueQoS0): it is returned in durables, once,
// and reads the message from the store. With viaStore (a pubsub rule's
// message), every session with a matching ordinary subscription reads
// it from the store.
func (s *Server) route(m *session.Message) (n int, durables durableTargets) {
	return s.routeVia(m, false)
}

func (s *Server) routeVia(m *session.Message, viaStore bool) (n int, durables durableTargets) {
	bp := matchPool.Get().(*[]subscriber)
	subs := s.topics.match(m.Topic, (*bp)[:0])
	storable := s.opts.Store != nil && (m.QoS > 0 || s.limits().QueueQoS0)
	rest := len(subs)
	if storable {
		// A durable session (any session, viaStore) reads the message
		// from the store and works out its delivery there (deliveryFor):
		// its ordinary matches need no merging here, only one entry in
		// durables.readers (a session listed twice is woken twice, which
		// is harmless).
		for i := range subs {
			e := &subs[i]
			if e.shared || !(viaStore || e.sess.IsDurable()) {
				continue
			}
			if !e.sub.NoLocal || m.From != e.sess.ClientID { // [MQTT-3.8.3-3]
				if durables.pooled == nil {
					durables.pooled = readersPool.Get().(*[]*session.Session)
					durables.readers = (*durables.pooled)[:0]
				}
				durables.readers = append(durables.readers, e.sess)
			}
			e.sess = nil
			rest--
		}
	}
	// For a large fan-out, count each session's ordinary matches first so
	// that only sessions with overlapping subscriptions pay for merging.
	var counts map[*session.Session]int
	if rest > 16 {
		counts = make(map[*session.Session]int, rest)
		for i := range subs {
			if e := &subs[i]; e.sess != nil && !e.shared {
				counts[e.sess]++
			}
		}
	}
	for i := range subs {
		e := &subs[i]
		if e.sess == nil {
			continue // merged into an earlier entry
		}
		d := session.Delivery{Msg: m, QoS: min(m.QoS, e.sub.QoS), Retain: m.Retain && e.sub.RetainAsPublished}
		if e.sub.ID != 0 {
			d.SubIDs = []uint32{e.sub.ID}
		}
		local := e.sub.NoLocal && m.From == e.sess.ClientID // [MQTT-3.8.3-3]
		if !e.shared && (counts == nil || counts[e.sess] > 1) {
			// Fold the session's other matching subscriptions into this
			// delivery.
			for j := i + 1; j < len(subs); j++ {
				o := &subs[j]
				if o.sess != e.sess || o.shared {
					continue
				}
				o.sess = nil
				if o.sub.NoLocal && m.From == e.sess.ClientID {
					continue
				}
				if local { // the first match was a no-local one: start from o
					d.QoS, d.Retain, d.SubIDs = 0, false, nil
					local = false
				}
				d.QoS = max(d.QoS, min(m.QoS, o.sub.QoS))
				d.Retain = d.Retain || (m.Retain && o.sub.RetainAsPublished)
				if o.sub.ID != 0 {
					d.SubIDs = append(d.SubIDs, o.sub.ID)
				}
			}
		}
		if local {
			continue
		}
		if storable && e.sess.IsDurable() { // a shared group's durable member
			durables.shared = append(durables.shared, e.sess)
			continue
		}
		if e.sess.Deliver(d) {
			n++
		} else if d.QoS > 0 || e.sess.Online() {
			s.stats.dropped.Add(1)
		}
	}
	clear(subs)
	*bp = subs[:0]
	matchPool.Put(bp)
	return n, durables
}
