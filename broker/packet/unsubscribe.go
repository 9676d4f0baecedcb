package packet

import (
	"fmt"
	"slices"
)

// decode decodes an UNSUBSCRIBE. As for SUBSCRIBE, filters are checked
// only for UTF-8; v5 lets the server answer 0x8F for a bad one.
func (pk *Unsubscribe) decode(body []byte, v Version, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	var err error
	if pk.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if v == V5 {
		if err := r.props(&pk.Properties, forUnsubscribe); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
	}
	for r.len() > 0 {
		// [MQTT-3.10.3-1]
		f, err := r.string("topic filter")
		if err != nil {
			return err
		}
		pk.Filters = append(pk.Filters, f)
	}
	if len(pk.Filters) == 0 {
		// [MQTT-3.10.3-2]
		return fmt.Errorf("no topic filters: %w", ProtocolError)
	}
	return nil
}

func (pk *Unsubscribe) remaining(v Version) (n, plen int) {
	n = 2
	if v == V5 {
		plen = pk.Properties.size(forUnsubscribe)
		n += varintLen(plen) + plen
	}
	for _, f := range pk.Filters {
		n += 2 + len(f)
	}
	return n, plen
}

func appendUnsubscribe(b []byte, pk *Unsubscribe, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, UNSUBSCRIBE, 0x2, n) // [MQTT-3.10.1-1]
	b = appendUint16(b, pk.PacketID)
	if v == V5 {
		b = pk.Properties.appendProps(b, forUnsubscribe, plen)
	}
	for _, f := range pk.Filters {
		b = appendString(b, f)
	}
	return b
}
