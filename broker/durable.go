package broker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/topic"
	"gatemq/session"
)

// Store is what the broker needs of durable storage; *boltstore.Store
// implements it. Every done callback runs on the store's writer goroutine
// after the commit (fsync) and must not block.
type Store interface {
	Append(publisher, topic string, meta, payload []byte, done func(boltstore.RecordID, error))
	AppendOnce(publisher, topic string, meta, payload, once []byte, done boltstore.AppendDone)
	Forget(once []byte, done func(error))
	OnceKeys() ([][]byte, error)
	Assign(clientID string, id boltstore.RecordID, done func(error))
	Unassign(clientID string, ids []boltstore.RecordID, done func(error))
	Assigned(clientID string) ([]boltstore.RecordID, error)
	Sync() error
	Streams(match func(pattern string) bool) []boltstore.StreamInfo
	HasGen(g boltstore.Gen) bool
	Read(k boltstore.StreamKey, after uint64, max int, buf []boltstore.Record, corrupt func(boltstore.RecordID, error)) ([]boltstore.Record, error)
	PutSession(clientID, part string, value []byte, done func(error))
	DeleteSession(clientID string, done func(error))
	LoadSessions(fn func(clientID string, parts map[string][]byte) error, bad func(clientID string, err error)) error
	PutCursors(clientID string, cursors map[boltstore.StreamKey]uint64, done func(error))
	LoadCursors(clientID string) (map[boltstore.StreamKey]uint64, error)
	PutRetained(topic string, value []byte, done func(error))
	DeleteRetained(topic string, done func(error))
	LoadRetained(fn func(topic string, value []byte) error, bad func(topic string, err error)) error

	// Offline message rules (offline.go).
	LoadQueue(name string) (boltstore.QueueState, error)
	SetQueueIndex(name string, indexed map[boltstore.StreamKey]uint64, done func(error))
	QueueAdd(name string, ids []boltstore.RecordID, done func(error))
	QueueRemove(name string, ids []boltstore.RecordID, done func(error))
	PutPositions(clientID string, pos map[boltstore.StreamKey]uint64, done func(error))
	LoadPositions(clientID string) (pos map[boltstore.StreamKey]uint64, known bool, err error)
	PrunePositions(before time.Time, keep func(clientID string) bool, done func(error))

	// Preset subscriptions (presets.go).
	PresetStore
}

var _ Store = (*boltstore.Store)(nil)

// groupDoner is a Store that can hand each commit's answers to a
// function that gathers them (boltstore.Store.GroupDone): the server
// then writes a connection's acknowledgements once per commit.
type groupDoner interface {
	GroupDone(group func(calls func()))
}

var _ groupDoner = (*boltstore.Store)(nil)

// Session parts in the store.
const (
	partState    = "state"
	partInflight = "inflight"
)

// dstate is a durable session's read state: how far it has looked into
// each stream. A stored message is done for the session when it is at or
// below the persisted cursor; the cursor is the read position held back
// below anything still queued or in flight.
type dstate struct {
	// mu guards pos and skip, and keeps the session's delivery state
	// snapshots in order on their way to the store (putDeliveryLocked);
	// it is taken before the session's mutex.
	mu   sync.Mutex
	pos  map[boltstore.StreamKey]uint64
	skip map[boltstore.RecordID]bool // in flight when restored: never read again
	// started holds the filters whose streams' starting positions are
	// fixed (startReadsAtHead): a stream such a filter matches and the
	// session has no position in was created after it subscribed, and is
	// read from its start, whatever later subscriptions also match it.
	started map[string]bool
	// fetched holds the shared-subscription messages assigned to the
	// session that it has read; once no longer queued or in flight they
	// are done and their assignments are released.
	fetched map[boltstore.RecordID]bool
}

func durableOf(sess *session.Session) *dstate {
	ds, _ := sess.Durable.(*dstate)
	return ds
}

// makeDurable turns sess into a durable session; a session that was not
// durable starts its reads at the current head of every stream its
// filters could match: it gets what is published from now on. A resumed
// durable session keeps its positions. Called with connectMu held,
// before the session is attached.
func (s *Server) makeDurable(sess *session.Session) {
	fresh := durableOf(sess) == nil
	if fresh {
		sess.Durable = &dstate{pos: make(map[boltstore.StreamKey]uint64), skip: make(map[boltstore.RecordID]bool),
			started: make(map[string]bool)}
	}
	sess.SetDurable(true)
	if fresh {
		s.startReadsAtHead(sess)
	}
}

// startReadsAtHead sets the read position of streams that the session's
// new filters could match, that no filter it had before matches and that
// it has no position in yet to their head: a new subscription gets what
// is published from now on. A filter subscribed again is not new: most
// clients resubscribe on every connection, and the streams its session
// has not read yet (created while it was away, or not reached yet in a
// backlog) must then still be read from their start [MQTT-3.8.4-3]
// (found by the crash test).
func (s *Server) startReadsAtHead(sess *session.Session) {
	ds := durableOf(sess)
	filters := durableFilters(sess)
	if ds == nil || len(filters) == 0 {
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	var fresh, old []session.Subscription
	for _, sub := range filters {
		if ds.started[sub.Filter] {
			old = append(old, sub)
		} else {
			fresh = append(fresh, sub)
		}
	}
	if len(fresh) == 0 {
		return
	}
	for _, si := range s.opts.Store.Streams(func(p string) bool { return anyMayMatch(fresh, p) && !anyMayMatch(old, p) }) {
		if _, ok := ds.pos[si.Key]; !ok {
			ds.pos[si.Key] = si.Head
		}
	}
	if ds.started == nil {
		ds.started = make(map[string]bool)
	}
	for _, sub := range fresh {
		ds.started[sub.Filter] = true
	}
}

// forgetStartedLocked drops from ds.started the filters the session no
// longer has, so that subscribing to one again starts at the heads.
// ds.mu must be held.
func forgetStartedLocked(ds *dstate, filters []session.Subscription) {
	for f := range ds.started {
		if !slices.ContainsFunc(filters, func(sub session.Subscription) bool { return sub.Filter == f }) {
			delete(ds.started, f)
		}
	}
}

// durableFilters returns the session's subscriptions that read from the
// store: all but shared ones, whose messages are routed in memory to one
// member of the group.
func durableFilters(sess *session.Session) []session.Subscription {
	subs := sess.Subscriptions()
	out := subs[:0]
	for _, sub := range subs {
		if _, _, shared := splitShared(sub.Filter); !shared {
			out = append(out, sub)
		}
	}
	return out
}

func anyMayMatch(subs []session.Subscription, pattern string) bool {
	for _, sub := range subs {
		if filterMayMatchPattern(sub.Filter, pattern) {
			return true
		}
	}
	return false
}

// filterMayMatchPattern reports whether filter can match a topic of a
// stream pattern, where a "+" level of the pattern stands for values that
// are not known here.
func filterMayMatchPattern(filter, pattern string) bool {
	fl, pl := strings.Split(filter, "/"), strings.Split(pattern, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(pl) {
			return false
		}
		if f != "+" && pl[i] != "+" && f != pl[i] {
			return false
		}
	}
	return len(fl) == len(pl)
}

// topicMatches reports whether topic name matches filter [MQTT-4.7]
// (topic.Match, under a name the broker's many "topic" variables do not
// shadow).
func topicMatches(filter, name string) bool { return topic.Match(filter, name) }

// durableBatch is how many stored messages a durable session reads ahead.
func (s *Server) durableBatch() int {
	if s.opts.DurableBatch > 0 {
		return s.opts.DurableBatch
	}
	return 100
}

// refill reads the next stored messages of an attached durable session
// into its queue, up to durableBatch queued, in the order readStreams
// gives them; those an offline rule delivers are left to it. It runs on
// the connection's writer goroutine before Next.
func (s *Server) refill(sess *session.Session) {
	ds := durableOf(sess)
	want := s.durableBatch() - sess.QueueLen()
	if ds == nil || want <= 0 {
		return
	}
	filters := durableFilters(sess)
	var streams []boltstore.StreamInfo
	if len(filters) > 0 {
		streams = s.opts.Store.Streams(func(p string) bool { return anyMayMatch(filters, p) })
	}
	now := time.Now().UnixNano()
	ds.mu.Lock()
	defer ds.mu.Unlock()
	forgetStartedLocked(ds, filters)
	want -= s.readStreams(streams, ds.pos, ds.skip, want, func(r *boltstore.Record, m *session.Message) bool {
		if s.offline.claims(m) {
			return false // an offline rule delivers it
		}
		d, ok := deliveryFor(m, sess.ClientID, filters)
		if ok {
			d.Ref = r.ID
			sess.Enqueue(d)
		}
		return ok
	})
	if want > 0 {
		s.refillAssignedLocked(sess, ds, want, now)
	}
}

// readStreams reads up to want records past pos in each of streams that
// has more, and offers them to take oldest first: streams are merged by
// the time their records were written, so messages from different
// publishers come in the order the broker stored them, and each stream
// stays in order. pos moves over every record read. A record in skip is
// passed over once and forgotten; one that is corrupt, undecodable or
// expired is passed over. It stops once take has accepted want records,
// and returns how many it accepted.
func (s *Server) readStreams(streams []boltstore.StreamInfo, pos map[boltstore.StreamKey]uint64, skip map[boltstore.RecordID]bool,
	want int, take func(r *boltstore.Record, m *session.Message) bool) int {
	now := time.Now().UnixNano()
	type pending struct {
		key  boltstore.StreamKey
		recs []boltstore.Record
	}
	var ps []*pending
	for _, si := range streams {
		p := pos[si.Key]
		if p >= si.Head {
			continue
		}
		recs, err := s.opts.Store.Read(si.Key, p, want, nil, func(id boltstore.RecordID, err error) {
			s.log.Error("corrupt stored message skipped", "record", id.String(), logErr, err)
		})
		if err != nil {
			s.log.Error("read stored messages", "stream", si.Key.String(), logErr, err)
			continue
		}
		// Not past the head the streams were listed with: a record
		// committed since may be newer than one of another stream whose
		// head was already reached, and would overtake it.
		for len(recs) > 0 && recs[len(recs)-1].ID.Seq > si.Head {
			recs = recs[:len(recs)-1]
		}
		if len(recs) == 0 {
			pos[si.Key] = si.Head // what is left failed its checksum
			continue
		}
		ps = append(ps, &pending{key: si.Key, recs: recs})
	}
	taken := 0
	for taken < want && len(ps) > 0 {
		best := 0
		for i, p := range ps {
			if p.recs[0].Time < ps[best].recs[0].Time {
				best = i
			}
		}
		p := ps[best]
		r := &p.recs[0]
		p.recs = p.recs[1:]
		if len(p.recs) == 0 {
			ps = append(ps[:best], ps[best+1:]...)
		}
		pos[p.key] = r.ID.Seq
		if skip[r.ID] {
			delete(skip, r.ID)
			continue
		}
		m, err := session.DecodeMessage(r.Topic, r.Meta, r.Payload)
		if err != nil {
			s.log.Error("undecodable stored message skipped", "record", r.ID.String(), logErr, err)
			continue
		}
		if !m.Expired(now) && take(r, m) {
			taken++
		}
	}
	return taken
}

// refillAssignedLocked queues the shared-subscription messages assigned
// to sess that it has not read yet. ds.mu is held.
func (s *Server) refillAssignedLocked(sess *session.Session, ds *dstate, want int, now int64) {
	ids, err := s.opts.Store.Assigned(sess.ClientID)
	if err != nil {
		s.log.Error("read assigned messages", logClientID, sess.ClientID, logErr, err)
		return
	}
	var shared []session.Subscription
	for _, sub := range sess.Subscriptions() {
		if _, f, ok := splitShared(sub.Filter); ok {
			sub.Filter = f
			sub.NoLocal = false
			shared = append(shared, sub)
		}
	}
	if ds.fetched == nil {
		ds.fetched = make(map[boltstore.RecordID]bool)
	}
	for _, id := range ids {
		if want <= 0 {
			return
		}
		if ds.fetched[id] {
			continue
		}
		ds.fetched[id] = true
		if ds.skip[id] {
			continue // in flight since before a restart
		}
		recs, err := s.opts.Store.Read(id.StreamKey, id.Seq-1, 1, nil, nil)
		if err != nil || len(recs) != 1 || recs[0].ID != id {
			continue // dropped by retention, or corrupt: done
		}
		m, err := session.DecodeMessage(recs[0].Topic, recs[0].Meta, recs[0].Payload)
		if err != nil || m.Expired(now) {
			continue
		}
		if d, ok := deliveryFor(m, sess.ClientID, shared); ok {
			d.Ref = id
			sess.Enqueue(d)
			want--
		}
	}
}

// releaseAssignedLocked releases the assignments the session has read and
// no longer holds queued or in flight. ds.mu is held.
func (s *Server) releaseAssignedLocked(sess *session.Session, ds *dstate, refs []boltstore.RecordID) {
	if len(ds.fetched) == 0 {
		return
	}
	held := make(map[boltstore.RecordID]bool, len(refs))
	for _, r := range refs {
		held[r] = true
	}
	var done []boltstore.RecordID
	for id := range ds.fetched {
		if !held[id] {
			done = append(done, id)
			delete(ds.fetched, id)
		}
	}
	if len(done) > 0 {
		s.opts.Store.Unassign(sess.ClientID, done, nil)
	}
}

// deliveryFor builds the delivery of m for a session with subs, as route
// does for a session in memory: the greatest granted QoS and every
// matching subscription identifier; no-local subscriptions of the
// publisher itself do not count.
func deliveryFor(m *session.Message, clientID string, subs []session.Subscription) (session.Delivery, bool) {
	d := session.Delivery{Msg: m}
	ok := false
	for _, sub := range subs {
		if !topicMatches(sub.Filter, m.Topic) || (sub.NoLocal && m.From == clientID) {
			continue
		}
		q := min(m.QoS, sub.QoS)
		if !ok || q > d.QoS {
			d.QoS = q
		}
		d.Retain = d.Retain || (m.Retain && sub.RetainAsPublished)
		if sub.ID != 0 {
			d.SubIDs = append(d.SubIDs, sub.ID)
		}
		ok = true
	}
	return d, ok
}

// persistInflight writes the session's in-flight table and calls done
// after the commit. A durable session's QoS 1 and 2 deliveries are
// recorded before they are sent, so that after a crash they go again
// with the same packet identifiers: a QoS 2 message the client has seen
// is then recognised by it and not delivered twice.
//
// The cursors go with the table, in the same commit or an earlier one: a
// delivery completed since the last save is no longer in the table, so
// it must be behind the cursor, or a restart reads it again and a QoS 2
// message reaches the client twice (found by the crash test).
func (s *Server) persistInflight(sess *session.Session, done func(error)) {
	ds := durableOf(sess)
	if ds == nil {
		b, err := session.MarshalInflight(sess.InflightSnapshot())
		if err != nil {
			done(err)
			return
		}
		s.opts.Store.PutSession(sess.ClientID, partInflight, b, done)
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	s.putDeliveryLocked(sess, ds, done)
}

// putDeliveryLocked queues the writes of a durable session's delivery
// state: its cursors, then its in-flight table; done is called after the
// commit that holds the table. ds.mu must be held, so that snapshots
// reach the store in the order they were taken (a stale table committed
// after a newer one would forget deliveries already sent).
func (s *Server) putDeliveryLocked(sess *session.Session, ds *dstate, done func(error)) {
	// The table is taken before the references that hold the cursors
	// back: a delivery completed in between is then in the table
	// (restored and resent, as DUP or PUBREL) rather than missing from
	// it while above its cursor (read again and sent as new).
	b, err := session.MarshalInflight(sess.InflightSnapshot())
	if err != nil {
		if done != nil {
			done(err)
		}
		return
	}
	cursors := make(map[boltstore.StreamKey]uint64, len(ds.pos))
	for k, p := range ds.pos {
		if !s.opts.Store.HasGen(k.Gen) {
			delete(ds.pos, k) // dropped by retention: nothing left to read
			continue
		}
		cursors[k] = p
	}
	refs := sess.RefsFrom(session.FromStream, true)
	for _, ref := range refs {
		if c, ok := cursors[ref.StreamKey]; ok && ref.Seq-1 < c {
			cursors[ref.StreamKey] = ref.Seq - 1
		}
	}
	if len(cursors) > 0 {
		s.opts.Store.PutCursors(sess.ClientID, cursors, nil)
	}
	if pr := preaderOf(sess); pr != nil {
		s.savePositions(sess, pr, false, nil) // like the cursors, before the table
	}
	s.opts.Store.PutSession(sess.ClientID, partInflight, b, done)
	s.releaseAssignedLocked(sess, ds, refs)
}

// persistInflightSync is persistInflight that waits for the commit.
func (s *Server) persistInflightSync(sess *session.Session) error {
	return commitSync(func(done func(error)) { s.persistInflight(sess, done) })
}

// saveSession writes the session's state, cursors and in-flight table;
// done (may be nil) is called after the commit.
func (s *Server) saveSession(sess *session.Session, done func(error)) {
	st := sess.Snapshot()
	st.Online = sess.Owner() != nil
	b, err := session.MarshalSaved(st)
	if err != nil {
		if done != nil {
			done(err)
		}
		return
	}
	if ds := durableOf(sess); ds != nil {
		ds.mu.Lock()
		s.putDeliveryLocked(sess, ds, nil)
		ds.mu.Unlock()
	}
	s.opts.Store.PutSession(sess.ClientID, partState, b, done)
}

// durableLoop persists the durable sessions that changed, every second,
// until the server closes.
func (s *Server) durableLoop() {
	s.every(time.Second, func() {
		for _, sess := range s.sessions.All() {
			if sess.IsDurable() && sess.TakeDirty() {
				s.saveSession(sess, nil)
			}
		}
	})
}

// ackReasonFor maps a failed durable write to the acknowledgement's
// reason: the message was not stored and must not be acknowledged as if
// it were.
func ackReasonFor(err error) packet.Reason {
	if errors.Is(err, boltstore.ErrQuota) {
		return packet.QuotaExceeded
	}
	return packet.UnspecifiedError
}

// persistRetained writes a retained message stored at at (or its
// deletion) to the store, adding the write to w. $SYS topics are not
// kept: the broker publishes them again. meta is m's encoded metadata
// when the caller has it already, else nil; persistRetained returns it,
// encoded if it had to, for the caller's other writes of m.
func (s *Server) persistRetained(m *session.Message, at int64, meta []byte, w *storeWait) []byte {
	if s.opts.Store == nil || strings.HasPrefix(m.Topic, "$SYS") {
		return meta
	}
	w.add()
	if len(m.Payload) == 0 {
		s.opts.Store.DeleteRetained(m.Topic, w.finish)
		return meta
	}
	if meta == nil {
		meta = session.EncodeMeta(m)
	}
	s.opts.Store.PutRetained(m.Topic, encodeRetained(m, at, meta), w.finish)
	return meta
}

// A stored retained message is 0x00, version 1, the time it was stored
// (unix ns, uint64 BE), then its meta length (uvarint), meta and
// payload. A value written before the stored time was kept has no
// header: it starts with the meta length, which is never 0.
const retainedVersion = 1

func encodeRetained(m *session.Message, at int64, meta []byte) []byte {
	v := binary.BigEndian.AppendUint64([]byte{0, retainedVersion}, uint64(at))
	v = binary.AppendUvarint(v, uint64(len(meta)))
	return append(append(v, meta...), m.Payload...)
}

// decodeRetained is the inverse of encodeRetained; at is 0 for a value
// without a stored time.
func decodeRetained(topic string, v []byte) (m *session.Message, at int64, err error) {
	if len(v) > 0 && v[0] == 0 {
		if len(v) < 10 || v[1] != retainedVersion {
			return nil, 0, errors.New("bad retained message header")
		}
		at, v = int64(binary.BigEndian.Uint64(v[2:10])), v[10:]
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return nil, 0, errors.New("bad retained message")
	}
	m, err = session.DecodeMessage(topic, v[k:k+int(n)], v[k+int(n):])
	return m, at, err
}

// Restore loads the durable sessions and retained messages kept in the
// store: every session comes back offline with its subscriptions,
// read positions and in-flight messages, and expires at the time it
// would have. Call it once, after New and before Serve.
func (s *Server) Restore() error {
	st := s.opts.Store
	if st == nil {
		return nil
	}
	now := time.Now()
	if err := s.status.restore(now); err != nil {
		return fmt.Errorf("restore client status: %w", err)
	}
	restored, expired := 0, 0
	err := st.LoadSessions(func(id string, parts map[string][]byte) error {
		saved, err := session.UnmarshalSaved(parts[partState])
		if err != nil {
			s.log.Error("undecodable durable session dropped", logClientID, id, logErr, err)
			st.DeleteSession(id, nil)
			return nil
		}
		last := time.Unix(0, saved.LastSeen)
		if saved.Online {
			last = now // connected when the broker stopped: offline from now
		}
		left := time.Duration(saved.Expiry)*time.Second - now.Sub(last)
		if saved.Expiry != 0xFFFFFFFF && left <= 0 {
			st.DeleteSession(id, nil)
			expired++
			return nil
		}
		sess := session.Restore(id, saved, s.sessions.Options())
		ds := &dstate{pos: make(map[boltstore.StreamKey]uint64), skip: make(map[boltstore.RecordID]bool),
			started: make(map[string]bool)}
		for _, sub := range saved.Subs {
			ds.started[sub.Filter] = true // subscribed, so started, before it was saved
		}
		if cur, err := st.LoadCursors(id); err == nil {
			ds.pos = cur
		} else {
			s.log.Error("durable session cursors unreadable: reading from the start", logClientID, id, logErr, err)
		}
		sess.Durable = ds
		s.attachPubsub(sess)
		if b := parts[partInflight]; len(b) > 0 {
			entries, err := session.UnmarshalInflight(b)
			if err != nil {
				s.log.Error("durable session in-flight table unreadable", logClientID, id, logErr, err)
			}
			sess.RestoreInflight(s.restoreInflight(ds, entries))
			if pr := preaderOf(sess); pr != nil {
				for _, e := range entries {
					if e.Src == session.FromPubsub {
						pr.skip[e.Ref] = true
					}
				}
			}
		}
		s.sessions.Restore(sess)
		for _, sub := range saved.Subs {
			s.topics.subscribe(sess, sub)
		}
		s.restoreWill(sess, parts[partWill], now)
		s.connectMu.Lock()
		s.startExpiryIn(sess, left)
		s.connectMu.Unlock()
		restored++
		return nil
	}, func(id string, err error) {
		s.log.Error("corrupt durable session data", logClientID, id, logErr, err)
	})
	if err != nil {
		return fmt.Errorf("restore durable sessions: %w", err)
	}
	if err := s.restoreInbound(); err != nil {
		return err
	}
	if err := s.restoreOffline(); err != nil {
		return err
	}
	retained := 0
	err = st.LoadRetained(func(topic string, v []byte) error {
		m, at, err := decodeRetained(topic, v)
		if err != nil {
			s.log.Error("undecodable retained message dropped", logTopic, topic, logErr, err)
			return nil
		}
		if !m.Expired(now.UnixNano()) {
			s.retained.set(m, at)
			retained++
		}
		return nil
	}, func(topic string, err error) {
		s.log.Error("corrupt retained message dropped", logTopic, topic, logErr, err)
	})
	if err != nil {
		return fmt.Errorf("restore retained messages: %w", err)
	}
	if err := s.restorePresets(); err != nil {
		return err
	}
	s.log.Info("restored durable state", "sessions", restored, "expired_sessions", expired, "retained", retained,
		"took", time.Since(now).Round(time.Millisecond).String())
	return nil
}

// restoreInflight rebuilds in-flight deliveries from their records; a
// record no longer stored (its generation dropped) is left out.
func (s *Server) restoreInflight(ds *dstate, entries []session.InflightEntry) []session.Delivery {
	var out []session.Delivery
	for _, e := range entries {
		ds.skip[e.Ref] = true
		d := session.Delivery{PacketID: e.PacketID, QoS: e.QoS, State: session.State(e.State), Retain: e.Retain, SubIDs: e.SubIDs,
			Ref: e.Ref, Src: e.Src}
		if d.State != session.AwaitPubcomp {
			recs, err := s.opts.Store.Read(e.Ref.StreamKey, e.Ref.Seq-1, 1, nil, nil)
			if err != nil || len(recs) != 1 || recs[0].ID != e.Ref {
				continue
			}
			m, err := session.DecodeMessage(recs[0].Topic, recs[0].Meta, recs[0].Payload)
			if err != nil {
				continue
			}
			d.Msg = m
		}
		out = append(out, d)
	}
	return out
}

// onceKey names an incoming QoS 2 message of a durable publisher session
// in the store: client ID, 0x00, packet ID (big-endian).
func onceKey(clientID string, id uint16) []byte {
	return append(append([]byte(clientID), 0), byte(id>>8), byte(id))
}

// restoreInbound gives restored sessions back the incoming QoS 2
// messages stored but not yet released by PUBREL.
func (s *Server) restoreInbound() error {
	keys, err := s.opts.Store.OnceKeys()
	if err != nil {
		return fmt.Errorf("read inbound QoS 2 state: %w", err)
	}
	for _, k := range keys {
		i := len(k) - 3
		if i < 0 || k[i] != 0 {
			continue
		}
		if sess := s.sessions.Get(string(k[:i])); sess != nil {
			sess.RestoreInbound(uint16(k[i+1])<<8 | uint16(k[i+2]))
		} else {
			s.opts.Store.Forget(k, nil) // its session ended or expired
		}
	}
	return nil
}

const partWill = "will"

// savedWill is a durable session's will as persisted: its message, delay
// and expiry, and when it is due (0 while the client is connected).
type savedWill struct {
	Topic    string            `json:"topic"`
	Payload  []byte            `json:"payload"`
	QoS      byte              `json:"qos"`
	Retain   bool              `json:"retain"`
	Props    packet.Properties `json:"props"`
	Delay    uint32            `json:"delay"`
	Expiry   uint32            `json:"expiry"`
	HasExp   bool              `json:"has_expiry"`
	Username string            `json:"username"`
	Due      int64             `json:"due,omitempty"` // unix ns
}

// saveWill persists sess's will, due at due (zero: its client is
// connected), or clears it when w is nil. Wills thus survive restarts:
// one whose client was connected when the broker stopped is handled as
// if the connection had dropped at the restart.
func (s *Server) saveWill(sess *session.Session, w *will, due time.Time) {
	if s.opts.Store == nil || !sess.IsDurable() {
		return
	}
	var b []byte
	if w != nil {
		sw := savedWill{Topic: w.msg.Topic, Payload: w.msg.Payload, QoS: w.msg.QoS, Retain: w.msg.Retain,
			Props: w.msg.Properties(), Delay: w.delay, Expiry: w.expiry, HasExp: w.hasExp, Username: w.username}
		if !due.IsZero() {
			sw.Due = due.UnixNano()
		}
		b, _ = json.Marshal(sw)
	}
	s.opts.Store.PutSession(sess.ClientID, partWill, b, nil)
}

// restoreWill schedules a restored session's will. The listener policy is
// not known before the listeners are served, so the publish ACL was the
// one checked at CONNECT.
func (s *Server) restoreWill(sess *session.Session, b []byte, now time.Time) {
	if len(b) == 0 {
		return
	}
	var sw savedWill
	if err := json.Unmarshal(b, &sw); err != nil {
		s.log.Error("undecodable saved will dropped", logClientID, sess.ClientID, logErr, err)
		return
	}
	w := &will{
		msg:   session.Message{Topic: sw.Topic, Payload: sw.Payload, QoS: sw.QoS, Retain: sw.Retain, From: sess.ClientID, Props: &sw.Props},
		delay: sw.Delay, expiry: sw.Expiry, hasExp: sw.HasExp, username: sw.Username,
	}
	due := now.Add(time.Duration(min(w.delay, sess.Expiry())) * time.Second)
	if sw.Due != 0 {
		due = time.Unix(0, sw.Due)
	}
	s.connectMu.Lock()
	defer s.connectMu.Unlock()
	s.scheduleWillAt(w, sess, due.Sub(now))
}
