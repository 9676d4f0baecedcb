package packet

// PropID is a v5 property identifier [MQTT-2.2.2.2].
type PropID byte

// Property identifiers.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUserProperty         PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// PropSet records which properties are present, one bit per PropID.
// Presence matters where absence has its own meaning (an absent Message
// Expiry Interval means "never expires", an absent Receive Maximum means
// 65535), so every property except User Property and Subscription
// Identifier is written only when its bit is set.
type PropSet uint64

// Has reports whether id is present.
func (s PropSet) Has(id PropID) bool { return s&(1<<id) != 0 }

// Add marks id present.
func (s *PropSet) Add(id PropID) { *s |= 1 << id }

// Del marks id absent.
func (s *PropSet) Del(id PropID) { *s &^= 1 << id }

// UserProperty is one name/value pair; order and duplicates are kept.
type UserProperty struct {
	Key, Value string
}

// Properties holds the v5 properties of any packet. A value is meaningful
// only when its bit is set in Present, except User and SubscriptionIDs,
// which are present when non-empty. Decoding a 3.x packet leaves it zero;
// encoding for 3.x ignores it.
type Properties struct {
	Present PropSet

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          string
	ResponseTopic        string
	CorrelationData      []byte
	SubscriptionIDs      []uint32 // one in SUBSCRIBE, any number in PUBLISH
	SessionExpiry        uint32
	AssignedClientID     string
	ServerKeepAlive      uint16
	AuthMethod           string
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         string
	ServerReference      string
	ReasonString         string
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
	User                 []UserProperty
}
