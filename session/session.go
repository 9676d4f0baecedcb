package session

import (
	"sync"
	"sync/atomic"
	"time"
)

// Options tunes a Session. The zero value means defaults.
type Options struct {
	// MaxInflight caps the outbound QoS 1 and 2 messages awaiting
	// acknowledgement, whatever Receive Maximum the client allows.
	// Default 32.
	MaxInflight int
	// MaxQueued caps the deliveries waiting to be sent. Default 1000.
	MaxQueued int
	// MaxQueuedBytes caps the payload bytes waiting to be sent; 0 means
	// no byte cap.
	MaxQueuedBytes int
	// QueueQoS0 queues QoS 0 messages while no connection is attached.
	QueueQoS0 bool
	// AwaitRelTimeout is how long an inbound QoS 2 message waits for
	// its PUBREL; an older exchange is dropped (its packet identifier
	// then starts a new message) and counted. 0 means no timeout.
	AwaitRelTimeout time.Duration
	// RelExpired, if set, is called with the number of inbound QoS 2
	// exchanges dropped on AwaitRelTimeout. It is called with the
	// session's mutex held, so it must not block or call the session.
	RelExpired func(n int)
}

func (o Options) withDefaults() Options {
	if o.MaxInflight <= 0 {
		o.MaxInflight = 32
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	return o
}

// Session is the state of one client identifier. See the package
// documentation for how it is shared between goroutines.
type Session struct {
	ClientID string

	// mu guards every field below.
	mu          sync.Mutex
	opts        Options // Registry.SetOptions changes it
	subs        map[string]Subscription
	expiry      uint32 // Session Expiry Interval in seconds; 0 ends with the connection
	owner       any    // the attached connection, nil while offline
	wake        func() // called when there is something to send; nil while offline
	window      int    // outbound in-flight cap for the attached connection
	inflight    inflightList
	queue       []Delivery
	qhead       int
	queuedBytes int
	nextID      uint16
	inbound     map[uint16]int64 // QoS 2 PUBLISH received, PUBREL not yet: when received (unix ns)
	relOldest   int64            // no inbound entry is older than this (unix ns); 0 when none
	dropped     uint64
	expired     uint64
	relExpired  uint64
	lastSeen    time.Time
	// durable: messages come from the store, state is persisted.
	// online mirrors owner != nil. Both are read without taking mu by
	// the routing of every message.
	durable, online atomic.Bool
	dirty           bool // durable state changed since it was last persisted
	offline         any  // the broker's state for its offline message rules (SetOffline)
	// Durable is the broker's per-session durable delivery state (cursors,
	// read positions); the broker guards it with its own lock.
	Durable any
}

// New returns an empty offline session.
func New(clientID string, opts Options) *Session {
	return &Session{
		ClientID: clientID,
		opts:     opts.withDefaults(),
		subs:     make(map[string]Subscription),
		lastSeen: time.Now(),
	}
}

// Attach makes owner the session's connection. recvMax is the client's
// Receive Maximum; wake is called, with the session's mutex held, whenever
// Next has something new to return. Everything in flight is returned again
// by Next, marked Dup, before anything queued [MQTT-4.4.0-1]. Attach
// returns the previous owner, if any, which the caller must disconnect.
func (s *Session) Attach(owner any, recvMax int, wake func()) (prev any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev = s.owner
	s.owner = owner
	s.online.Store(true)
	s.wake = wake
	s.window = s.opts.MaxInflight
	if recvMax > 0 && recvMax < s.window {
		s.window = recvMax
	}
	s.inflight.rewind()
	s.lastSeen = time.Now()
	if s.inflight.len() > 0 || s.qhead < len(s.queue) {
		wake()
	}
	return prev
}

// Reserve makes owner the session's connection without anything being
// sent yet: deliveries queue, and a takeover sees the owner. Attach
// follows once the connection may write.
func (s *Session) Reserve(owner any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owner = owner
	s.online.Store(true)
	s.wake = nil
}

// Detach takes owner off the session and reports whether it was the
// session's connection (a connection that was taken over is not).
func (s *Session) Detach(owner any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != owner || owner == nil {
		return false
	}
	s.owner = nil
	s.online.Store(false)
	s.wake = nil
	s.lastSeen = time.Now()
	return true
}

// Online reports whether a connection is attached.
func (s *Session) Online() bool {
	return s.online.Load()
}

// LastSeen returns when a connection was last attached or detached.
func (s *Session) LastSeen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeen
}

// SetExpiry sets the Session Expiry Interval in seconds.
func (s *Session) SetExpiry(sec uint32) {
	s.mu.Lock()
	s.expiry = sec
	s.mu.Unlock()
}

// Expiry returns the Session Expiry Interval in seconds.
func (s *Session) Expiry() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry
}

// Deliver queues d for sending and reports whether it was accepted. A
// delivery is refused, and counted as dropped, when the queue is at its
// cap; a QoS 0 delivery to an offline session is refused without being
// counted unless Options.QueueQoS0 is set. Deliver never blocks.
func (s *Session) Deliver(d Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == nil && d.QoS == 0 && !s.opts.QueueQoS0 {
		return false
	}
	if len(s.queue)-s.qhead >= s.opts.MaxQueued ||
		(s.opts.MaxQueuedBytes > 0 && s.queuedBytes+len(d.Msg.Payload) > s.opts.MaxQueuedBytes) {
		s.dropped++
		return false
	}
	d.State = Queued
	d.PacketID = 0
	s.queue = append(s.queue, d)
	s.queuedBytes += len(d.Msg.Payload)
	if s.wake != nil {
		s.wake()
	}
	return true
}

// Next appends to buf what may be written now and returns it: first the
// in-flight deliveries not yet sent on this connection (Dup set for a
// PUBLISH; State AwaitPubcomp means a PUBREL is to be sent), then queued
// deliveries while the in-flight window allows, each QoS 1 or 2 one given
// a packet identifier and recorded as in flight. Expired messages are
// discarded [MQTT-3.3.2-5]. At most max deliveries are returned. While no
// connection is attached, or owner is not the attached one, it returns
// nothing: a connection's writer may run before Attach (to send CONNACK)
// or after a takeover, and what it took then would be stranded or sent
// twice. A connection that is only reserved (Reserve, no Attach yet) gets
// nothing either: Attach rewinds the in-flight window, which would send
// again, marked Dup, what the writer took before.
func (s *Session) Next(owner any, buf []Delivery, now int64, max int) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == nil || s.owner != owner || s.wake == nil {
		return buf
	}
	for max > 0 {
		d, ok := s.inflight.nextUnsent()
		if !ok {
			break
		}
		if d.State != AwaitPubcomp {
			d.Dup = true
		}
		buf = append(buf, d)
		max--
	}
	for s.qhead < len(s.queue) && max > 0 {
		d := s.queue[s.qhead]
		if d.Msg.Expired(now) {
			s.popLocked()
			s.expired++
			continue
		}
		if d.QoS > 0 {
			if s.inflight.len() >= s.window {
				break
			}
			d.PacketID = s.allocIDLocked()
			if d.QoS == 1 {
				d.State = AwaitPuback
			} else {
				d.State = AwaitPubrec
			}
			s.inflight.add(d)
		}
		s.popLocked()
		buf = append(buf, d)
		max--
	}
	return buf
}

func (s *Session) popLocked() {
	s.queuedBytes -= len(s.queue[s.qhead].Msg.Payload)
	s.queue[s.qhead] = Delivery{}
	s.qhead++
	if s.qhead == len(s.queue) {
		s.queue = s.queue[:0]
		s.qhead = 0
	} else if s.qhead > 1024 && s.qhead*2 > len(s.queue) {
		n := copy(s.queue, s.queue[s.qhead:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.qhead = 0
	}
}

// allocIDLocked returns a packet identifier not used by any in-flight
// delivery [MQTT-2.2.1-3].
func (s *Session) allocIDLocked() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if s.inflight.get(s.nextID) == nil {
			return s.nextID
		}
	}
}

// removeLocked ends the in-flight delivery id and wakes the writer when
// that opens the window for a queued one.
func (s *Session) removeLocked(id uint16) bool {
	if !s.inflight.remove(id) {
		return false
	}
	s.dirty = s.dirty || s.durable.Load()
	if s.wake != nil && s.qhead < len(s.queue) {
		s.wake() // the window opened
	}
	return true
}

// Puback completes the QoS 1 delivery with packet identifier id and
// reports whether there was one.
func (s *Session) Puback(id uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.inflight.get(id); d == nil || d.State != AwaitPuback {
		return false
	}
	return s.removeLocked(id)
}

// Pubrec records a PUBREC for id and reports whether a QoS 2 delivery was
// waiting for it. A failed PUBREC (reason >= 0x80) ends the exchange
// (v5 section 4.3.3); otherwise the delivery now waits for PUBCOMP and the
// caller sends PUBREL. A PUBREC repeated for a delivery already waiting
// for PUBCOMP also reports true, so that PUBREL is sent again.
func (s *Session) Pubrec(id uint16, failed bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.inflight.get(id)
	if d == nil || d.State == AwaitPuback {
		return false
	}
	if failed {
		return s.removeLocked(id)
	}
	d.State = AwaitPubcomp
	d.Msg = nil // the message itself is delivered; free it
	return true
}

// Pubcomp completes the QoS 2 delivery with packet identifier id and
// reports whether there was one.
func (s *Session) Pubcomp(id uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.inflight.get(id); d == nil || d.State != AwaitPubcomp {
		return false
	}
	return s.removeLocked(id)
}

// Discard ends the in-flight delivery id without an acknowledgement (used
// when a message cannot be sent because it exceeds the client's Maximum
// Packet Size [MQTT-3.1.2-25]).
func (s *Session) Discard(id uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(id)
}

// ReceiveQoS2 records an incoming QoS 2 PUBLISH with packet identifier
// id. dup reports that id is already awaiting PUBREL, so the message must
// not be delivered again [MQTT-4.3.3-9]; full reports that max such
// exchanges are already open (Receive Maximum exceeded). Exchanges older
// than Options.AwaitRelTimeout are dropped first, as Mosquitto and EMQX
// do, so a client that never sends PUBREL cannot hold its slots forever.
func (s *Session) ReceiveQoS2(id uint16, max int) (dup, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	if t := s.opts.AwaitRelTimeout; t > 0 && s.relOldest != 0 && now-s.relOldest >= int64(t) {
		s.expireRelLocked(now - int64(t))
	}
	if _, ok := s.inbound[id]; ok {
		return true, false
	}
	if len(s.inbound) >= max {
		return false, true
	}
	if s.inbound == nil {
		s.inbound = make(map[uint16]int64)
	}
	s.inbound[id] = now
	if s.relOldest == 0 {
		s.relOldest = now
	}
	return false, false
}

// expireRelLocked drops the inbound QoS 2 exchanges received before
// cutoff and recomputes relOldest. Each call either drops an exchange or
// moves relOldest up to the true oldest, so the scans cost O(1) per
// exchange over time.
func (s *Session) expireRelLocked(cutoff int64) {
	n := 0
	s.relOldest = 0
	for id, at := range s.inbound {
		if at < cutoff {
			delete(s.inbound, id)
			n++
		} else if s.relOldest == 0 || at < s.relOldest {
			s.relOldest = at
		}
	}
	if n > 0 {
		s.relExpired += uint64(n)
		if s.opts.RelExpired != nil {
			s.opts.RelExpired(n)
		}
	}
}

// ReleaseQoS2 handles PUBREL for id and reports whether it was awaited.
func (s *Session) ReleaseQoS2(id uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inbound[id]; !ok {
		return false
	}
	delete(s.inbound, id)
	if len(s.inbound) == 0 {
		s.relOldest = 0
	}
	return true
}

// Subscribe adds or replaces the subscription with sub's filter and
// reports whether one existed.
func (s *Session) Subscribe(sub Subscription) (existed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = s.dirty || s.durable.Load()
	_, existed = s.subs[sub.Filter]
	s.subs[sub.Filter] = sub
	return existed
}

// CanSubscribe reports whether a subscription to filter fits under max
// subscriptions: it replaces an existing one, or the session has fewer
// than max. max 0 means no cap. It is meant for the goroutine that makes
// the session's subscription changes, for which the answer holds until
// its next Subscribe.
func (s *Session) CanSubscribe(filter string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[filter]; ok || max <= 0 {
		return true
	}
	return len(s.subs) < max
}

// Unsubscribe removes the subscription with filter and reports whether
// it existed.
func (s *Session) Unsubscribe(filter string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = s.dirty || s.durable.Load()
	_, ok := s.subs[filter]
	delete(s.subs, filter)
	return ok
}

// Subscriptions returns a copy of the session's subscriptions.
func (s *Session) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, sub)
	}
	return out
}

// Stats is a snapshot of a session's counters.
type Stats struct {
	Subscriptions int
	Inflight      int
	Queued        int
	InboundQoS2   int
	Dropped       uint64 // deliveries refused because the queue was full
	Expired       uint64 // queued messages discarded on expiry
	RelExpired    uint64 // inbound QoS 2 exchanges dropped after AwaitRelTimeout
}

// Stats returns a snapshot of the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Subscriptions: len(s.subs),
		Inflight:      s.inflight.len(),
		Queued:        len(s.queue) - s.qhead,
		InboundQoS2:   len(s.inbound),
		Dropped:       s.dropped,
		Expired:       s.expired,
		RelExpired:    s.relExpired,
	}
}

// Owner returns the attached connection, or nil.
func (s *Session) Owner() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner
}
