package session

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
)

// SetDurable marks the session durable: its messages come from the store
// and its state is persisted. Deliver still queues in memory what the
// broker routes to it directly (retained messages on subscribe, QoS 0
// messages that are not stored).
func (s *Session) SetDurable(d bool) {
	s.durable.Store(d)
}

// IsDurable reports whether the session is durable.
func (s *Session) IsDurable() bool {
	return s.durable.Load()
}

// TakeDirty reports whether the durable state changed since the last
// call, and clears the mark.
func (s *Session) TakeDirty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirty
	s.dirty = false
	return d
}

// QueueLen returns the number of deliveries waiting to be sent.
func (s *Session) QueueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.qhead
}

// Enqueue queues d whatever the caps: for a durable session's reads from
// the store, which the broker bounds itself.
func (s *Session) Enqueue(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.State = Queued
	d.PacketID = 0
	s.queue = append(s.queue, d)
	s.queuedBytes += len(d.Msg.Payload)
	if s.wake != nil {
		s.wake()
	}
}

// Wake calls the attached connection's wake function, if any.
func (s *Session) Wake() {
	if !s.online.Load() {
		// Nothing to wake. A connection attaching after this load reads
		// the store after whatever the caller changed before calling.
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake != nil {
		s.wake()
	}
}

// SetOffline keeps v, the broker's state for its offline message rules
// (which guards its contents with its own lock), with the session.
func (s *Session) SetOffline(v any) {
	s.mu.Lock()
	s.offline = v
	s.mu.Unlock()
}

// Offline returns what SetOffline kept, or nil.
func (s *Session) Offline() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offline
}

// RefsFrom returns the store records of the deliveries from src queued
// and in flight, so the broker knows which stored messages are not done
// yet. received says whether to count the QoS 2 deliveries the client
// has already received (PUBREC, awaiting PUBCOMP).
func (s *Session) RefsFrom(src Source, received bool) []boltstore.RecordID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []boltstore.RecordID
	for _, d := range s.queue[s.qhead:] {
		if d.Ref.Seq != 0 && d.Src == src {
			out = append(out, d.Ref)
		}
	}
	for i := s.inflight.head; i < len(s.inflight.list); i++ {
		d := &s.inflight.list[i]
		if d.State != Queued && d.Ref.Seq != 0 && d.Src == src && (received || d.State != AwaitPubcomp) {
			out = append(out, d.Ref)
		}
	}
	return out
}

// InflightRef returns the store record and source of the in-flight
// delivery with packet identifier id; ok is false when there is none.
func (s *Session) InflightRef(id uint16) (ref boltstore.RecordID, src Source, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.inflight.get(id); d != nil {
		return d.Ref, d.Src, true
	}
	return ref, src, false
}

// TakeQueued removes the queued deliveries from src, not yet sent, and
// returns them in order.
func (s *Session) TakeQueued(src Source) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Delivery
	keep := s.queue[:s.qhead]
	for _, d := range s.queue[s.qhead:] {
		if d.Ref.Seq != 0 && d.Src == src {
			out = append(out, d)
			s.queuedBytes -= len(d.Msg.Payload)
			continue
		}
		keep = append(keep, d)
	}
	clear(s.queue[len(keep):])
	s.queue = keep
	if s.qhead == len(s.queue) {
		s.queue, s.qhead = s.queue[:0], 0
	}
	return out
}

// Room returns how many more deliveries the attached connection can take
// now: its in-flight window less what is in flight and queued. It is 0
// while no connection is attached.
func (s *Session) Room() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake == nil {
		return 0
	}
	return s.window - s.inflight.len() - (len(s.queue) - s.qhead)
}

// Saved is what a durable session keeps across restarts besides its
// cursors and in-flight table.
type Saved struct {
	Expiry   uint32         `json:"expiry"`
	LastSeen int64          `json:"last_seen"` // unix nanoseconds
	Subs     []Subscription `json:"subs"`
	Will     []byte         `json:"will,omitempty"`   // the broker's encoded pending will
	Online   bool           `json:"online,omitempty"` // a connection was attached when saved
}

// Snapshot returns the session's Saved state.
func (s *Session) Snapshot() Saved {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Saved{Expiry: s.expiry, LastSeen: s.lastSeen.UnixNano()}
	for _, sub := range s.subs {
		st.Subs = append(st.Subs, sub)
	}
	slices.SortFunc(st.Subs, func(a, b Subscription) int {
		if a.Filter < b.Filter {
			return -1
		}
		if a.Filter > b.Filter {
			return 1
		}
		return 0
	})
	return st
}

// MarshalSaved encodes a Saved state.
func MarshalSaved(st Saved) ([]byte, error) { return json.Marshal(st) }

// UnmarshalSaved decodes a Saved state.
func UnmarshalSaved(b []byte) (Saved, error) {
	var st Saved
	err := json.Unmarshal(b, &st)
	return st, err
}

// Restore returns an offline durable session with st's subscriptions,
// expiry and last-seen time.
//
// Saved has no inbound QoS 2 state: the store's once keys, written in the
// commit of each message (the broker's restoreInbound), are the only record of
// it. A copy saved with the state went stale at the next PUBREL, and
// restoring it made a later PUBLISH that reused the packet identifier
// look like a resend: acknowledged, and dropped (found by the crash test).
func Restore(clientID string, st Saved, opts Options) *Session {
	s := New(clientID, opts)
	s.durable.Store(true)
	s.expiry = st.Expiry
	s.lastSeen = time.Unix(0, st.LastSeen)
	for _, sub := range st.Subs {
		s.subs[sub.Filter] = sub
	}
	return s
}

// Restore adds a restored session to the registry; an existing one with
// the same client ID is replaced.
func (r *Registry) Restore(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[s.ClientID] = s
}

// Options returns the options sessions of the registry get.
func (r *Registry) Options() Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts
}

// InflightEntry is one in-flight delivery as persisted: the message is
// not copied, only its record.
type InflightEntry struct {
	PacketID uint16             `json:"id"`
	QoS      byte               `json:"qos"`
	State    uint8              `json:"state"`
	Retain   bool               `json:"retain,omitempty"`
	SubIDs   []uint32           `json:"sub_ids,omitempty"`
	Ref      boltstore.RecordID `json:"-"`
	RefBytes []byte             `json:"ref"`
	Src      Source             `json:"src,omitempty"`
}

// InflightSnapshot returns the in-flight deliveries that came from the
// store, in send order.
func (s *Session) InflightSnapshot() []InflightEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []InflightEntry
	for i := s.inflight.head; i < len(s.inflight.list); i++ {
		d := s.inflight.list[i]
		if d.State == Queued || d.Ref.Seq == 0 {
			continue
		}
		out = append(out, InflightEntry{PacketID: d.PacketID, QoS: d.QoS, State: uint8(d.State),
			Retain: d.Retain, SubIDs: d.SubIDs, Ref: d.Ref, RefBytes: d.Ref.Bytes(), Src: d.Src})
	}
	return out
}

// MarshalInflight encodes an in-flight table.
func MarshalInflight(es []InflightEntry) ([]byte, error) { return json.Marshal(es) }

// UnmarshalInflight decodes an in-flight table.
func UnmarshalInflight(b []byte) ([]InflightEntry, error) {
	var es []InflightEntry
	if err := json.Unmarshal(b, &es); err != nil {
		return nil, err
	}
	for i := range es {
		ref, err := boltstore.ParseRecordID(es[i].RefBytes)
		if err != nil {
			return nil, err
		}
		es[i].Ref = ref
	}
	return es, nil
}

// RestoreInflight puts deliveries back in flight after a restart, in the
// order given; the next connection gets them again first, PUBLISH with
// DUP or PUBREL, with their packet identifiers.
func (s *Session) RestoreInflight(ds []Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.inflight.add(d)
		if d.PacketID > s.nextID {
			s.nextID = d.PacketID
		}
	}
	s.inflight.rewind()
}

// Message metadata as stored with a durable record: the flags, expiry,
// publisher and forwarded v5 properties. The topic and payload are the
// record's own.
//
//	[0]   flags: QoS (bits 0-1), retain (2), expiry (3), properties (4)
//	      expiry: unix nanoseconds, uint64 BE
//	      publisher: uvarint length, bytes
//	      properties: uvarint length, JSON

// EncodeMeta returns m's stored metadata.
func EncodeMeta(m *Message) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= 1 << 2
	}
	if m.Expires != 0 {
		flags |= 1 << 3
	}
	var props []byte
	if p := m.Props; p != nil && (p.Present != 0 || len(p.User) > 0) {
		props, _ = json.Marshal(p)
		flags |= 1 << 4
	}
	// One allocation: the flags, the expiry, two uvarint lengths.
	b := make([]byte, 1, 1+8+2*binary.MaxVarintLen64+len(m.From)+len(props))
	b[0] = flags
	if m.Expires != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(m.Expires))
	}
	b = binary.AppendUvarint(b, uint64(len(m.From)))
	b = append(b, m.From...)
	if props != nil {
		b = binary.AppendUvarint(b, uint64(len(props)))
		b = append(b, props...)
	}
	return b
}

// DecodeMessage rebuilds a Message from a stored record.
func DecodeMessage(topic string, meta, payload []byte) (*Message, error) {
	if len(meta) < 1 {
		return nil, fmt.Errorf("empty message metadata")
	}
	m := &Message{Topic: topic, Payload: payload, QoS: meta[0] & 3, Retain: meta[0]&(1<<2) != 0}
	rest := meta[1:]
	if meta[0]&(1<<3) != 0 {
		if len(rest) < 8 {
			return nil, fmt.Errorf("short message expiry")
		}
		m.Expires = int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return nil, fmt.Errorf("bad publisher length")
	}
	m.From = string(rest[k : k+int(n)])
	rest = rest[k+int(n):]
	if meta[0]&(1<<4) != 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return nil, fmt.Errorf("bad properties length")
		}
		m.Props = new(packet.Properties)
		if err := json.Unmarshal(rest[k:k+int(n)], m.Props); err != nil {
			return nil, fmt.Errorf("properties: %w", err)
		}
	}
	return m, nil
}

// RestoreInbound records an incoming QoS 2 message as received and
// awaiting PUBREL, after a restart.
func (s *Session) RestoreInbound(id uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inbound == nil {
		s.inbound = make(map[uint16]int64)
	}
	now := time.Now().UnixNano()
	s.inbound[id] = now
	if s.relOldest == 0 || now < s.relOldest {
		s.relOldest = now
	}
}

// InboundIDs returns the packet identifiers of incoming QoS 2 messages
// awaiting PUBREL.
func (s *Session) InboundIDs() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint16, 0, len(s.inbound))
	for id := range s.inbound {
		out = append(out, id)
	}
	return out
}
