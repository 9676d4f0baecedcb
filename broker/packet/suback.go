package packet

import (
	"fmt"
	"slices"
)

// subackCode maps a reason to a 3.x SUBACK return code: the granted QoS,
// or 0x80 for anything else [MQTT-3.9.3 in 3.1.1].
func subackCode(r Reason) byte {
	if r <= GrantedQoS2 {
		return byte(r)
	}
	return 0x80
}

func (pk *Suback) decode(body []byte, v Version, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	var err error
	if pk.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if v == V5 {
		if err := r.props(&pk.Properties, forSuback); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
	}
	codes := r.rest()
	if len(codes) == 0 {
		// One reason per filter [MQTT-3.9.3-1], and a SUBSCRIBE has at least one.
		return fmt.Errorf("no reason codes: %w", ProtocolError)
	}
	pk.Reasons = make([]Reason, len(codes))
	for i, c := range codes {
		rc := Reason(c)
		if v == V5 && !subackReasons.has(rc) || v != V5 && c > 2 && c != 0x80 {
			// [MQTT-3.9.3-2] (3.1.1); v5 3.9.3.
			return fmt.Errorf("read reason code: %v not allowed: %w", rc, MalformedPacket)
		}
		pk.Reasons[i] = rc
	}
	return nil
}

func (pk *Suback) remaining(v Version) (n, plen int) {
	n = 2 + len(pk.Reasons)
	if v == V5 {
		plen = pk.Properties.size(forSuback)
		n += varintLen(plen) + plen
	}
	return n, plen
}

func appendSuback(b []byte, pk *Suback, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, SUBACK, 0, n)
	b = appendUint16(b, pk.PacketID)
	if v != V5 {
		for _, r := range pk.Reasons {
			b = append(b, subackCode(r))
		}
		return b
	}
	b = pk.Properties.appendProps(b, forSuback, plen)
	for _, r := range pk.Reasons {
		b = append(b, byte(r))
	}
	return b
}
