package packet

import (
	"fmt"
	"slices"
)

// ack holds the fields PUBACK, PUBREC, PUBREL and PUBCOMP share; the four
// types convert to it without copying.
type ack struct {
	PacketID   uint16
	Reason     Reason
	Properties Properties
}

// ackReasons returns the reason codes packet type t may carry in v5.
func ackReasons(t Type) *reasonSet {
	if t == PUBACK || t == PUBREC {
		return &pubackReasons
	}
	return &pubrelReasons
}

// decode decodes the body of a PUBACK, PUBREC, PUBREL or PUBCOMP of type t.
func (pk *ack) decode(t Type, body []byte, v Version, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	var err error
	if pk.PacketID, err = r.packetID(); err != nil {
		return err
	}
	// 3.x has only the packet identifier. In v5 the reason code may be
	// left out when it is Success and there are no properties, and the
	// Property Length when there are none (v5 3.4.2.1 and likewise for
	// PUBREC, PUBREL, PUBCOMP).
	if v == V5 && r.len() > 0 {
		code, _ := r.byte("reason code")
		pk.Reason = Reason(code)
		if !ackReasons(t).has(pk.Reason) {
			return fmt.Errorf("read reason code: %v not allowed: %w", pk.Reason, MalformedPacket)
		}
		if r.len() > 0 {
			if err := r.props(&pk.Properties, forAck); err != nil {
				return fmt.Errorf("read properties: %w", err)
			}
		}
	}
	return r.end()
}

func (pk *ack) remaining(v Version) (n, plen int) {
	if v != V5 {
		return 2, 0
	}
	plen = pk.Properties.size(forAck)
	switch {
	case plen > 0:
		return 3 + varintLen(plen) + plen, plen
	case pk.Reason != Success:
		return 3, 0
	}
	return 2, 0
}

func (pk *ack) appendTo(b []byte, t Type, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	var flags byte
	if t == PUBREL {
		flags = 0x2 // [MQTT-3.6.1-1]
	}
	b = appendHeader(b, t, flags, n)
	b = appendUint16(b, pk.PacketID)
	if n == 2 {
		return b
	}
	b = append(b, byte(pk.Reason))
	if n == 3 {
		return b
	}
	return pk.Properties.appendProps(b, forAck, plen)
}

// AppendAck appends a PUBACK, PUBREC, PUBREL or PUBCOMP (t) without
// properties: what Append makes of such a packet with empty Properties,
// for a caller that keeps only the identifier and the reason code.
func AppendAck(b []byte, t Type, id uint16, r Reason, v Version) []byte {
	pk := ack{PacketID: id, Reason: r}
	return pk.appendTo(b, t, v)
}
