package packet

import (
	"fmt"
	"slices"
)

// decode decodes an UNSUBACK: in 3.x just the packet identifier, in v5
// also properties and one reason code per filter.
func (pk *Unsuback) decode(body []byte, v Version, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	var err error
	if pk.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if v != V5 {
		return r.end()
	}
	if err := r.props(&pk.Properties, forUnsuback); err != nil {
		return fmt.Errorf("read properties: %w", err)
	}
	codes := r.rest()
	if len(codes) == 0 {
		// One reason per filter [MQTT-3.11.3-1] (v5), and an UNSUBSCRIBE has at least one.
		return fmt.Errorf("no reason codes: %w", ProtocolError)
	}
	pk.Reasons = make([]Reason, len(codes))
	for i, c := range codes {
		rc := Reason(c)
		if !unsubackReasons.has(rc) {
			// v5 3.11.3
			return fmt.Errorf("read reason code: %v not allowed: %w", rc, MalformedPacket)
		}
		pk.Reasons[i] = rc
	}
	return nil
}

func (pk *Unsuback) remaining(v Version) (n, plen int) {
	if v != V5 {
		return 2, 0
	}
	plen = pk.Properties.size(forUnsuback)
	return 2 + varintLen(plen) + plen + len(pk.Reasons), plen
}

func appendUnsuback(b []byte, pk *Unsuback, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, UNSUBACK, 0, n)
	b = appendUint16(b, pk.PacketID)
	if v != V5 {
		return b
	}
	b = pk.Properties.appendProps(b, forUnsuback, plen)
	for _, r := range pk.Reasons {
		b = append(b, byte(r))
	}
	return b
}
