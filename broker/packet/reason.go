package packet

import "fmt"

// A Reason is an MQTT v5 reason code [MQTT-2.4]. Codes >= 0x80 are
// failures. Reason implements error so that protocol errors carry their
// code: the connection loop picks the CONNACK or DISCONNECT code with
// errors.As.
type Reason byte

// Reason codes. Several share a value, as in the specification.
const (
	Success                             Reason = 0x00
	NormalDisconnection                 Reason = 0x00
	GrantedQoS0                         Reason = 0x00
	GrantedQoS1                         Reason = 0x01
	GrantedQoS2                         Reason = 0x02
	DisconnectWithWill                  Reason = 0x04
	NoMatchingSubscribers               Reason = 0x10
	NoSubscriptionExisted               Reason = 0x11
	ContinueAuthentication              Reason = 0x18
	ReAuthenticate                      Reason = 0x19
	UnspecifiedError                    Reason = 0x80
	MalformedPacket                     Reason = 0x81
	ProtocolError                       Reason = 0x82
	ImplementationSpecificError         Reason = 0x83
	UnsupportedProtocolVersion          Reason = 0x84
	ClientIdentifierNotValid            Reason = 0x85
	BadUserNameOrPassword               Reason = 0x86
	NotAuthorized                       Reason = 0x87
	ServerUnavailable                   Reason = 0x88
	ServerBusy                          Reason = 0x89
	Banned                              Reason = 0x8A
	ServerShuttingDown                  Reason = 0x8B
	BadAuthenticationMethod             Reason = 0x8C
	KeepAliveTimeout                    Reason = 0x8D
	SessionTakenOver                    Reason = 0x8E
	TopicFilterInvalid                  Reason = 0x8F
	TopicNameInvalid                    Reason = 0x90
	PacketIdentifierInUse               Reason = 0x91
	PacketIdentifierNotFound            Reason = 0x92
	ReceiveMaximumExceeded              Reason = 0x93
	TopicAliasInvalid                   Reason = 0x94
	PacketTooLarge                      Reason = 0x95
	MessageRateTooHigh                  Reason = 0x96
	QuotaExceeded                       Reason = 0x97
	AdministrativeAction                Reason = 0x98
	PayloadFormatInvalid                Reason = 0x99
	RetainNotSupported                  Reason = 0x9A
	QoSNotSupported                     Reason = 0x9B
	UseAnotherServer                    Reason = 0x9C
	ServerMoved                         Reason = 0x9D
	SharedSubscriptionsNotSupported     Reason = 0x9E
	ConnectionRateExceeded              Reason = 0x9F
	MaximumConnectTime                  Reason = 0xA0
	SubscriptionIdentifiersNotSupported Reason = 0xA1
	WildcardSubscriptionsNotSupported   Reason = 0xA2
)

var reasonNames = map[Reason]string{
	0x00: "success",
	0x01: "granted qos 1",
	0x02: "granted qos 2",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x18: "continue authentication",
	0x19: "re-authenticate",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "qos not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason 0x%02x", byte(r))
}

func (r Reason) Error() string { return r.String() }

// Failed reports whether r is a failure code (>= 0x80).
func (r Reason) Failed() bool { return r >= 0x80 }
