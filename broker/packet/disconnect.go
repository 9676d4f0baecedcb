package packet

import (
	"fmt"
	"slices"
)

// decode decodes a DISCONNECT. In 3.x it has no body; in v5 a Remaining
// Length of 0 means Normal disconnection without properties, and of 1 a
// reason code without properties (v5 3.14.2.1, 3.14.2.2.1).
func (pk *Disconnect) decode(body []byte, v Version, maxUser int) error {
	if v != V5 {
		return decodeEmpty(body)
	}
	r := reader{b: body, maxUser: maxUser}
	if r.len() == 0 {
		return nil
	}
	code, _ := r.byte("reason code")
	pk.Reason = Reason(code)
	if !disconnectReasons.has(pk.Reason) {
		return fmt.Errorf("read reason code: %v not allowed: %w", pk.Reason, MalformedPacket)
	}
	if r.len() > 0 {
		if err := r.props(&pk.Properties, forDisconnect); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
	}
	return r.end()
}

func (pk *Disconnect) remaining(v Version) (n, plen int) {
	if v != V5 {
		return 0, 0
	}
	plen = pk.Properties.size(forDisconnect)
	switch {
	case plen > 0:
		return 1 + varintLen(plen) + plen, plen
	case pk.Reason != NormalDisconnection:
		return 1, 0
	}
	return 0, 0
}

func appendDisconnect(b []byte, pk *Disconnect, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, DISCONNECT, 0, n)
	if n == 0 {
		return b
	}
	b = append(b, byte(pk.Reason))
	if n == 1 {
		return b
	}
	return pk.Properties.appendProps(b, forDisconnect, plen)
}
