package packet

import (
	"fmt"
	"math/bits"
)

// propKind is the data type of a property value [MQTT-2.2.2.2 in v5].
type propKind uint8

const (
	kindNone propKind = iota
	kindByte
	kindUint16
	kindUint32
	kindVarint
	kindString
	kindBinary
	kindPair
)

var propKinds = [64]propKind{
	PropPayloadFormat:        kindByte,
	PropMessageExpiry:        kindUint32,
	PropContentType:          kindString,
	PropResponseTopic:        kindString,
	PropCorrelationData:      kindBinary,
	PropSubscriptionID:       kindVarint,
	PropSessionExpiry:        kindUint32,
	PropAssignedClientID:     kindString,
	PropServerKeepAlive:      kindUint16,
	PropAuthMethod:           kindString,
	PropAuthData:             kindBinary,
	PropRequestProblemInfo:   kindByte,
	PropWillDelay:            kindUint32,
	PropRequestResponseInfo:  kindByte,
	PropResponseInfo:         kindString,
	PropServerReference:      kindString,
	PropReasonString:         kindString,
	PropReceiveMaximum:       kindUint16,
	PropTopicAliasMaximum:    kindUint16,
	PropTopicAlias:           kindUint16,
	PropMaximumQoS:           kindByte,
	PropRetainAvailable:      kindByte,
	PropUserProperty:         kindPair,
	PropMaximumPacketSize:    kindUint32,
	PropWildcardSubAvailable: kindByte,
	PropSubIDAvailable:       kindByte,
	PropSharedSubAvailable:   kindByte,
}

var propNames = [64]string{
	PropPayloadFormat:        "payload format indicator",
	PropMessageExpiry:        "message expiry interval",
	PropContentType:          "content type",
	PropResponseTopic:        "response topic",
	PropCorrelationData:      "correlation data",
	PropSubscriptionID:       "subscription identifier",
	PropSessionExpiry:        "session expiry interval",
	PropAssignedClientID:     "assigned client identifier",
	PropServerKeepAlive:      "server keep alive",
	PropAuthMethod:           "authentication method",
	PropAuthData:             "authentication data",
	PropRequestProblemInfo:   "request problem information",
	PropWillDelay:            "will delay interval",
	PropRequestResponseInfo:  "request response information",
	PropResponseInfo:         "response information",
	PropServerReference:      "server reference",
	PropReasonString:         "reason string",
	PropReceiveMaximum:       "receive maximum",
	PropTopicAliasMaximum:    "topic alias maximum",
	PropTopicAlias:           "topic alias",
	PropMaximumQoS:           "maximum qos",
	PropRetainAvailable:      "retain available",
	PropUserProperty:         "user property",
	PropMaximumPacketSize:    "maximum packet size",
	PropWildcardSubAvailable: "wildcard subscription available",
	PropSubIDAvailable:       "subscription identifier available",
	PropSharedSubAvailable:   "shared subscription available",
}

// String returns the name of the property as the specification gives it,
// in lower case: "topic alias".
func (id PropID) String() string {
	if int(id) < len(propNames) && propNames[id] != "" {
		return propNames[id]
	}
	return fmt.Sprintf("property 0x%02x", byte(id))
}

// propsFor names the packet (or the will) that properties belong to.
type propsFor uint8

const (
	forConnect propsFor = iota
	forWill
	forConnack
	forPublish
	forAck // PUBACK, PUBREC, PUBREL, PUBCOMP
	forSubscribe
	forSuback
	forUnsubscribe
	forUnsuback
	forDisconnect
	forAuth
)

// propMasks lists the properties each packet may carry, from table 2-4 of
// the v5 specification [MQTT-2.2.2.2]. Any other identifier is malformed.
var propMasks = [...]PropSet{
	forConnect: 1<<PropSessionExpiry | 1<<PropAuthMethod | 1<<PropAuthData |
		1<<PropRequestProblemInfo | 1<<PropRequestResponseInfo | 1<<PropReceiveMaximum |
		1<<PropTopicAliasMaximum | 1<<PropUserProperty | 1<<PropMaximumPacketSize,
	forWill: 1<<PropPayloadFormat | 1<<PropMessageExpiry | 1<<PropContentType |
		1<<PropResponseTopic | 1<<PropCorrelationData | 1<<PropWillDelay | 1<<PropUserProperty,
	forConnack: 1<<PropSessionExpiry | 1<<PropAssignedClientID | 1<<PropServerKeepAlive |
		1<<PropAuthMethod | 1<<PropAuthData | 1<<PropResponseInfo | 1<<PropServerReference |
		1<<PropReasonString | 1<<PropReceiveMaximum | 1<<PropTopicAliasMaximum |
		1<<PropMaximumQoS | 1<<PropRetainAvailable | 1<<PropUserProperty |
		1<<PropMaximumPacketSize | 1<<PropWildcardSubAvailable | 1<<PropSubIDAvailable |
		1<<PropSharedSubAvailable,
	forPublish: 1<<PropPayloadFormat | 1<<PropMessageExpiry | 1<<PropContentType |
		1<<PropResponseTopic | 1<<PropCorrelationData | 1<<PropSubscriptionID |
		1<<PropTopicAlias | 1<<PropUserProperty,
	forAck:         1<<PropReasonString | 1<<PropUserProperty,
	forSubscribe:   1<<PropSubscriptionID | 1<<PropUserProperty,
	forSuback:      1<<PropReasonString | 1<<PropUserProperty,
	forUnsubscribe: 1 << PropUserProperty,
	forUnsuback:    1<<PropReasonString | 1<<PropUserProperty,
	forDisconnect: 1<<PropSessionExpiry | 1<<PropServerReference | 1<<PropReasonString |
		1<<PropUserProperty,
	forAuth: 1<<PropAuthMethod | 1<<PropAuthData | 1<<PropReasonString | 1<<PropUserProperty,
}

func (p *Properties) u8(id PropID) *byte {
	switch id {
	case PropPayloadFormat:
		return &p.PayloadFormat
	case PropRequestProblemInfo:
		return &p.RequestProblemInfo
	case PropRequestResponseInfo:
		return &p.RequestResponseInfo
	case PropMaximumQoS:
		return &p.MaximumQoS
	case PropRetainAvailable:
		return &p.RetainAvailable
	case PropWildcardSubAvailable:
		return &p.WildcardSubAvailable
	case PropSubIDAvailable:
		return &p.SubIDAvailable
	case PropSharedSubAvailable:
		return &p.SharedSubAvailable
	}
	panic("packet: no byte property " + id.String())
}

func (p *Properties) u16(id PropID) *uint16 {
	switch id {
	case PropServerKeepAlive:
		return &p.ServerKeepAlive
	case PropReceiveMaximum:
		return &p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return &p.TopicAliasMaximum
	case PropTopicAlias:
		return &p.TopicAlias
	}
	panic("packet: no two-byte property " + id.String())
}

func (p *Properties) u32(id PropID) *uint32 {
	switch id {
	case PropMessageExpiry:
		return &p.MessageExpiry
	case PropSessionExpiry:
		return &p.SessionExpiry
	case PropWillDelay:
		return &p.WillDelay
	case PropMaximumPacketSize:
		return &p.MaximumPacketSize
	}
	panic("packet: no four-byte property " + id.String())
}

func (p *Properties) str(id PropID) *string {
	switch id {
	case PropContentType:
		return &p.ContentType
	case PropResponseTopic:
		return &p.ResponseTopic
	case PropAssignedClientID:
		return &p.AssignedClientID
	case PropAuthMethod:
		return &p.AuthMethod
	case PropResponseInfo:
		return &p.ResponseInfo
	case PropServerReference:
		return &p.ServerReference
	case PropReasonString:
		return &p.ReasonString
	}
	panic("packet: no string property " + id.String())
}

func (p *Properties) bin(id PropID) *[]byte {
	switch id {
	case PropCorrelationData:
		return &p.CorrelationData
	case PropAuthData:
		return &p.AuthData
	}
	panic("packet: no binary property " + id.String())
}

// encSet returns the properties to encode for packet f, User Property
// excluded (it is written last). Subscription Identifier is written when
// SubscriptionIDs is non-empty, whatever its bit in Present.
func (p *Properties) encSet(f propsFor) PropSet {
	s := p.Present &^ (1<<PropUserProperty | 1<<PropSubscriptionID)
	if len(p.SubscriptionIDs) > 0 {
		s |= 1 << PropSubscriptionID
	}
	return s & propMasks[f]
}

// subIDs returns the subscription identifiers to encode: all of them in a
// PUBLISH, only the first in a SUBSCRIBE, which carries one.
func (p *Properties) subIDs(f propsFor) []uint32 {
	if f == forSubscribe && len(p.SubscriptionIDs) > 1 {
		return p.SubscriptionIDs[:1]
	}
	return p.SubscriptionIDs
}

// size returns the length of the encoded properties of packet f, without
// the Property Length in front of them. Properties the packet cannot carry
// are left out.
func (p *Properties) size(f propsFor) int {
	if p.Present == 0 && len(p.User) == 0 && len(p.SubscriptionIDs) == 0 {
		return 0
	}
	n := 0
	for s := p.encSet(f); s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(uint64(s)))
		switch propKinds[id] {
		case kindByte:
			n += 2
		case kindUint16:
			n += 3
		case kindUint32:
			n += 5
		case kindVarint:
			for _, v := range p.subIDs(f) {
				n += 1 + varintLen(int(v))
			}
		case kindString:
			n += 3 + len(*p.str(id))
		case kindBinary:
			n += 3 + len(*p.bin(id))
		}
	}
	for _, u := range p.User {
		n += 5 + len(u.Key) + len(u.Value)
	}
	return n
}

// appendProps appends the Property Length n (from size) and the properties
// of packet f: ascending identifier, then the User Properties in order.
func (p *Properties) appendProps(b []byte, f propsFor, n int) []byte {
	b = appendVarint(b, n)
	if n == 0 {
		return b
	}
	for s := p.encSet(f); s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(uint64(s)))
		switch propKinds[id] {
		case kindByte:
			b = append(b, byte(id), *p.u8(id))
		case kindUint16:
			b = appendUint16(append(b, byte(id)), *p.u16(id))
		case kindUint32:
			b = appendUint32(append(b, byte(id)), *p.u32(id))
		case kindVarint:
			for _, v := range p.subIDs(f) {
				b = appendVarint(append(b, byte(id)), int(v))
			}
		case kindString:
			b = appendString(append(b, byte(id)), *p.str(id))
		case kindBinary:
			b = appendString(append(b, byte(id)), *p.bin(id))
		}
	}
	for _, u := range p.User {
		b = append(b, byte(PropUserProperty))
		b = appendString(b, u.Key)
		b = appendString(b, u.Value)
	}
	return b
}

// props reads a Property Length and the properties of packet f into p,
// setting a Present bit for every property read.
func (r *reader) props(p *Properties, f propsFor) error {
	n, err := r.varint("property length")
	if err != nil {
		return err
	}
	if n > len(r.b) {
		return truncated("properties")
	}
	pr := reader{b: r.b[:n:n]}
	r.b = r.b[n:]
	mask := propMasks[f]
	var seen PropSet
	for len(pr.b) > 0 {
		c, _ := pr.byte("property identifier")
		id := PropID(c)
		// Identifiers are Variable Byte Integers, but every defined one
		// fits in one byte; a longer one is unknown anyway.
		if id >= 64 || !mask.Has(id) {
			// v5 2.2.2.2: an identifier not valid for the packet is malformed.
			return fmt.Errorf("read %v: not allowed here: %w", id, MalformedPacket)
		}
		if seen.Has(id) && id != PropUserProperty && !(id == PropSubscriptionID && f == forPublish) {
			// v5 2.2.2.2, and per property in 3.x.2.2: including a
			// property more than once is a Protocol Error.
			return fmt.Errorf("read %v: duplicate: %w", id, ProtocolError)
		}
		seen.Add(id)
		field := propNames[id]
		switch propKinds[id] {
		case kindByte:
			v, err := pr.byte(field)
			if err != nil {
				return err
			}
			// Every byte property is a 0/1 flag except Maximum QoS,
			// which may only be 0 or 1 too (absent means 2): other
			// values are Protocol Errors (v5 3.1.2.11.7, 3.1.2.11.6,
			// 3.2.2.3.4, 3.2.2.3.5, 3.2.2.3.11 to 3.2.2.3.13, 3.3.2.3.2).
			if v > 1 {
				return fmt.Errorf("read %s: value %d: %w", field, v, ProtocolError)
			}
			*p.u8(id) = v
		case kindUint16:
			v, err := pr.uint16(field)
			if err != nil {
				return err
			}
			// Receive Maximum 0 (v5 3.1.2.11.3, 3.2.2.3.3) and Topic
			// Alias 0 [MQTT-3.3.2-8] are Protocol Errors.
			if v == 0 && (id == PropReceiveMaximum || id == PropTopicAlias) {
				return fmt.Errorf("read %s: zero: %w", field, ProtocolError)
			}
			*p.u16(id) = v
		case kindUint32:
			v, err := pr.uint32(field)
			if err != nil {
				return err
			}
			// Maximum Packet Size 0 is a Protocol Error (v5 3.1.2.11.4, 3.2.2.3.6).
			if v == 0 && id == PropMaximumPacketSize {
				return fmt.Errorf("read %s: zero: %w", field, ProtocolError)
			}
			*p.u32(id) = v
		case kindVarint:
			v, err := pr.varint(field)
			if err != nil {
				return err
			}
			// Subscription Identifier 0 is a Protocol Error (v5 3.3.2.3.8,
			// 3.8.2.1.2); the varint itself bounds it by 268,435,455.
			if v == 0 {
				return fmt.Errorf("read %s: zero: %w", field, ProtocolError)
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
		case kindString:
			v, err := pr.string(field)
			if err != nil {
				return err
			}
			if id == PropResponseTopic {
				// [MQTT-3.3.2-14] (v5): a Response Topic is a topic name,
				// without wildcards.
				if err := ValidTopicName(v); err != nil {
					return fmt.Errorf("read %s: %w", field, err)
				}
			}
			*p.str(id) = v
		case kindBinary:
			v, err := pr.binary(field)
			if err != nil {
				return err
			}
			*p.bin(id) = v
		case kindPair:
			// Counted before anything is stored, so that a packet of
			// 100,000 User Properties costs no 100,000-entry slice.
			if r.users++; r.maxUser > 0 && r.users > r.maxUser {
				return fmt.Errorf("read %s: more than %d: %w", field, r.maxUser, QuotaExceeded)
			}
			k, err := pr.string("user property name")
			if err != nil {
				return err
			}
			v, err := pr.string("user property value")
			if err != nil {
				return err
			}
			p.User = append(p.User, UserProperty{Key: k, Value: v})
		}
	}
	p.Present |= seen
	return nil
}
