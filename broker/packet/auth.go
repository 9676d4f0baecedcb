package packet

import (
	"fmt"
	"slices"
)

// decode decodes an AUTH (v5 only; checkHeader rejects it in 3.x). A
// Remaining Length of 0 means Success without properties (v5 3.15.2.1);
// otherwise the reason code and the Property Length are both present.
func (pk *Auth) decode(body []byte, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	if r.len() == 0 {
		return nil
	}
	code, _ := r.byte("reason code")
	pk.Reason = Reason(code)
	if !authReasons.has(pk.Reason) {
		return fmt.Errorf("read reason code: %v not allowed: %w", pk.Reason, MalformedPacket)
	}
	if err := r.props(&pk.Properties, forAuth); err != nil {
		return fmt.Errorf("read properties: %w", err)
	}
	return r.end()
}

// remaining ignores the version: AUTH exists only in v5, and Append
// writes the v5 form for any version (a test can send one to a 3.x server).
func (pk *Auth) remaining() (n, plen int) {
	plen = pk.Properties.size(forAuth)
	if plen == 0 && pk.Reason == Success {
		return 0, 0
	}
	return 1 + varintLen(plen) + plen, plen
}

func appendAuth(b []byte, pk *Auth) []byte {
	n, plen := pk.remaining()
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, AUTH, 0, n)
	if n == 0 {
		return b
	}
	b = append(b, byte(pk.Reason))
	return pk.Properties.appendProps(b, forAuth, plen)
}
