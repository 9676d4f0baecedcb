package packet

import (
	"fmt"
	"slices"
)

// connackCode maps a v5 reason code to the 3.x CONNACK return code
// [MQTT-3.2.2.3 in 3.1.1]. Anything without its own 3.x code is 3,
// server unavailable.
func connackCode(r Reason) byte {
	switch r {
	case Success:
		return 0
	case UnsupportedProtocolVersion:
		return 1
	case ClientIdentifierNotValid:
		return 2
	case BadUserNameOrPassword:
		return 4
	case NotAuthorized:
		return 5
	}
	return 3
}

// connackReasonsV3 maps 3.x return codes 0..5 back to v5 reason codes.
var connackReasonsV3 = [...]Reason{Success, UnsupportedProtocolVersion,
	ClientIdentifierNotValid, ServerUnavailable, BadUserNameOrPassword, NotAuthorized}

func (pk *Connack) decode(body []byte, v Version, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	flags, err := r.byte("connect acknowledge flags")
	if err != nil {
		return err
	}
	code, err := r.byte("reason code")
	if err != nil {
		return err
	}
	// MQTT 3.1 has no Session Present: the whole byte is unused there.
	if v != V31 {
		if flags&^1 != 0 {
			// 3.2.2.1 in 3.1.1 and v5: bits 7-1 are reserved, MUST be 0.
			return fmt.Errorf("connect acknowledge flags %08b: %w", flags, MalformedPacket)
		}
		pk.SessionPresent = flags == 1
	}
	if v == V5 {
		pk.Reason = Reason(code)
		if !connackReasons.has(pk.Reason) {
			return fmt.Errorf("read reason code: %v not allowed: %w", pk.Reason, MalformedPacket)
		}
		if err := r.props(&pk.Properties, forConnack); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
	} else {
		if int(code) >= len(connackReasonsV3) {
			// Return codes 6-255 are reserved [MQTT-3.2.2.3 in 3.1.1].
			return fmt.Errorf("read return code: %d reserved: %w", code, MalformedPacket)
		}
		pk.Reason = connackReasonsV3[code]
	}
	if pk.SessionPresent && pk.Reason != Success {
		// [MQTT-3.2.2-4 in 3.1.1, MQTT-3.2.2-6 in v5]
		return fmt.Errorf("session present with reason %v: %w", pk.Reason, ProtocolError)
	}
	return r.end()
}

func (pk *Connack) remaining(v Version) (n, plen int) {
	if v != V5 {
		return 2, 0
	}
	plen = pk.Properties.size(forConnack)
	return 2 + varintLen(plen) + plen, plen
}

func appendConnack(b []byte, pk *Connack, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, CONNACK, 0, n)
	// Session Present is 0 with any failure [MQTT-3.2.2-4 in 3.1.1,
	// MQTT-3.2.2-6 in v5], and 3.1 has no such flag.
	var flags byte
	if pk.SessionPresent && pk.Reason == Success && v != V31 {
		flags = 1
	}
	if v != V5 {
		return append(b, flags, connackCode(pk.Reason))
	}
	b = append(b, flags, byte(pk.Reason))
	return pk.Properties.appendProps(b, forConnack, plen)
}
