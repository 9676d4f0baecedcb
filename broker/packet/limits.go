package packet

// DecodeOptions are limits the decoder enforces beyond the specification's,
// so that a packet within the Maximum Packet Size cannot make the decoder
// build more than the server is willing to hold. The zero value enforces
// none: DecodeOptions{}.Decode is Decode. A DecodeOptions is a plain value,
// safe for concurrent use.
type DecodeOptions struct {
	// MaxUserProperties caps the User Properties of one packet, counted
	// over all its property lists (a CONNECT has two: its own and the
	// will's); 0 means no cap. The User Property over the cap fails the
	// decode with an error wrapping QuotaExceeded before it is stored,
	// so the cost of a packet of 100,000 of them is its body, not a
	// 100,000-entry slice.
	//
	// QuotaExceeded is the code v5 gives for "an implementation or
	// administrative imposed limit has been exceeded" and is valid in
	// CONNACK and DISCONNECT alike; the packet is neither malformed nor a
	// protocol error, and not over the Maximum Packet Size.
	MaxUserProperties int
}
