package packet

// Version is the MQTT protocol level carried in CONNECT.
type Version byte

// Protocol levels gatemq speaks.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   Version = 5 // MQTT 5.0, protocol name "MQTT"
)

func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "unknown"
}

// Type is the control packet type from the high nibble of the fixed header.
type Type byte

// Control packet types [MQTT-2.1.2].
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "INVALID"
}

// A Packet is one decoded MQTT control packet: one of the pointer types
// *Connect, *Connack, *Publish, *Puback, *Pubrec, *Pubrel, *Pubcomp,
// *Subscribe, *Suback, *Unsubscribe, *Unsuback, *Pingreq, *Pingresp,
// *Disconnect or *Auth.
type Packet interface {
	Type() Type
}

// Header is the fixed header: type, the low-nibble flags and the
// remaining length [MQTT-2.1].
type Header struct {
	Type      Type
	Flags     byte
	Remaining int
}

// Connect is the first packet a client sends [MQTT-3.1].
type Connect struct {
	ProtocolName string  // "MQTT", or "MQIsdp" for 3.1
	Version      Version // protocol level
	CleanStart   bool    // clean session in 3.x
	KeepAlive    uint16  // seconds; 0 disables
	Properties   Properties

	ClientID string

	WillFlag       bool
	WillQoS        byte
	WillRetain     bool
	WillProperties Properties
	WillTopic      string
	WillPayload    []byte

	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
}

// Connack answers CONNECT [MQTT-3.2]. Reason is always a v5 reason code;
// for 3.x the codec maps it to the 3.x return code (0x84 -> 1, 0x85 -> 2,
// 0x88/0x89/other failures -> 3, 0x86 -> 4, 0x87 -> 5) and back.
type Connack struct {
	SessionPresent bool
	Reason         Reason
	Properties     Properties
}

// Publish carries an application message [MQTT-3.3]. PacketID is 0 for
// QoS 0. After Decode, Payload aliases the body slice given to Decode.
type Publish struct {
	Dup        bool
	QoS        byte
	Retain     bool
	Topic      string // may be empty in v5 when a topic alias is set
	PacketID   uint16
	Properties Properties
	Payload    []byte
}

// Puback acknowledges a QoS 1 PUBLISH [MQTT-3.4].
type Puback struct {
	PacketID   uint16
	Reason     Reason
	Properties Properties
}

// Pubrec is the first acknowledgement of a QoS 2 PUBLISH [MQTT-3.5].
type Pubrec struct {
	PacketID   uint16
	Reason     Reason
	Properties Properties
}

// Pubrel releases a QoS 2 message [MQTT-3.6]. Its fixed-header flags are 0010.
type Pubrel struct {
	PacketID   uint16
	Reason     Reason
	Properties Properties
}

// Pubcomp completes a QoS 2 exchange [MQTT-3.7].
type Pubcomp struct {
	PacketID   uint16
	Reason     Reason
	Properties Properties
}

// Subscription is one topic filter of a SUBSCRIBE with its options
// [MQTT-3.8.3.1]. The option bits other than QoS are v5 only.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0, 1 or 2
}

// Subscribe asks for one or more subscriptions [MQTT-3.8].
type Subscribe struct {
	PacketID      uint16
	Properties    Properties
	Subscriptions []Subscription
}

// Suback answers SUBSCRIBE with one reason per filter [MQTT-3.9]. For
// 3.x the reasons are 0, 1, 2 or 0x80 (any failure encodes as 0x80).
type Suback struct {
	PacketID   uint16
	Properties Properties
	Reasons    []Reason
}

// Unsubscribe removes subscriptions [MQTT-3.10].
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties
	Filters    []string
}

// Unsuback answers UNSUBSCRIBE [MQTT-3.11]. Reasons are encoded for v5
// only; for 3.x they are neither written nor read.
type Unsuback struct {
	PacketID   uint16
	Properties Properties
	Reasons    []Reason
}

// Pingreq is a keepalive ping [MQTT-3.12].
type Pingreq struct{}

// Pingresp answers PINGREQ [MQTT-3.13].
type Pingresp struct{}

// Disconnect ends a connection [MQTT-3.14]. In 3.x it has no body and
// Reason and Properties are ignored on encode and zero on decode.
type Disconnect struct {
	Reason     Reason
	Properties Properties
}

// Auth carries an enhanced-authentication exchange, v5 only [MQTT-3.15].
type Auth struct {
	Reason     Reason
	Properties Properties
}

func (*Connect) Type() Type     { return CONNECT }
func (*Connack) Type() Type     { return CONNACK }
func (*Publish) Type() Type     { return PUBLISH }
func (*Puback) Type() Type      { return PUBACK }
func (*Pubrec) Type() Type      { return PUBREC }
func (*Pubrel) Type() Type      { return PUBREL }
func (*Pubcomp) Type() Type     { return PUBCOMP }
func (*Subscribe) Type() Type   { return SUBSCRIBE }
func (*Suback) Type() Type      { return SUBACK }
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }
func (*Unsuback) Type() Type    { return UNSUBACK }
func (*Pingreq) Type() Type     { return PINGREQ }
func (*Pingresp) Type() Type    { return PINGRESP }
func (*Disconnect) Type() Type  { return DISCONNECT }
func (*Auth) Type() Type        { return AUTH }
