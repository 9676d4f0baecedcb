package session

import (
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
)

// Message is an application message as the broker routes it. A Message is
// shared by every session it is delivered to and must not be modified
// after it is first routed.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte // the QoS it was published with
	Retain  bool // the RETAIN flag it was published with
	From    string

	// Props holds the properties forwarded to v5 subscribers (payload
	// format, content type, response topic, correlation data, user
	// properties). Message expiry, topic alias and subscription
	// identifiers are set per delivery. nil for none, as for every 3.x
	// message: the properties are 272 of a message's 344 bytes.
	Props *packet.Properties

	// Expires is when the message expires (unix nanoseconds), 0 for never.
	Expires int64
}

// Properties returns a copy of m's forwarded properties, the zero value
// for none.
func (m *Message) Properties() packet.Properties {
	if m.Props == nil {
		return packet.Properties{}
	}
	return *m.Props
}

// Expired reports whether m has expired at now (unix nanoseconds).
func (m *Message) Expired(now int64) bool {
	return m.Expires != 0 && now >= m.Expires
}

// RemainingExpiry returns the Message Expiry Interval to forward at now,
// in whole seconds rounded up, and whether the message has one.
func (m *Message) RemainingExpiry(now int64) (uint32, bool) {
	if m.Expires == 0 {
		return 0, false
	}
	left := m.Expires - now
	if left <= 0 {
		return 0, true
	}
	return uint32((left + int64(time.Second) - 1) / int64(time.Second)), true
}

// Delivery is a message on its way to one session: queued, or in flight
// with a packet identifier.
type Delivery struct {
	Msg      *Message
	QoS      byte     // min(published QoS, granted QoS)
	Retain   bool     // RETAIN flag to send
	SubIDs   []uint32 // subscription identifiers of the matching subscriptions
	PacketID uint16   // 0 until it is sent with QoS > 0
	Dup      bool     // set when it is sent again on session resume
	State    State    // where a QoS 1/2 delivery is in its exchange
	// Ref is the stored record a durable session's delivery came from;
	// zero for a delivery routed in memory.
	Ref boltstore.RecordID
	// Src says which reader of the store took Ref: the session's own
	// reading of the streams, or an offline rule of the broker.
	Src Source
}

// Source is the reader of the store a delivery came from, whose read
// position it holds back until it is done.
type Source uint8

// Sources of deliveries.
const (
	FromStream Source = iota // routed in memory, or read by a durable session from the streams
	FromPubsub               // read from a client's position in the pubsub rules' streams
	FromQueue                // handed out by a queue rule
)

// State is the stage of an outbound QoS 1 or 2 exchange.
type State uint8

// Outbound exchange states.
const (
	Queued       State = iota // not sent yet
	AwaitPuback               // QoS 1 sent
	AwaitPubrec               // QoS 2 sent
	AwaitPubcomp              // QoS 2: PUBREC received, PUBREL sent
)

func (s State) String() string {
	switch s {
	case Queued:
		return "queued"
	case AwaitPuback:
		return "await-puback"
	case AwaitPubrec:
		return "await-pubrec"
	case AwaitPubcomp:
		return "await-pubcomp"
	}
	return "invalid"
}
