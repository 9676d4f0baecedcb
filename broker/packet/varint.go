package packet

// MaxVarint is the largest value a Variable Byte Integer can hold: four
// bytes of seven bits [MQTT-1.5.5 in v5, 2.2.3 in 3.1.1]. It bounds the
// Remaining Length and so the size of any packet.
const MaxVarint = 268_435_455

// varintLen returns the number of bytes appendVarint writes for n.
func varintLen(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	}
	return 4
}

// appendVarint appends n as a Variable Byte Integer, least significant
// seven bits first, each byte but the last with its high bit set. A value
// outside 0..MaxVarint is a programmer error (a packet or property that
// cannot be encoded) and panics rather than writing a corrupt packet.
func appendVarint(b []byte, n int) []byte {
	if n < 0 || n > MaxVarint {
		panic("packet: variable byte integer out of range")
	}
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// varintByte is one step of decoding a Variable Byte Integer: it folds
// byte c, the i-th (from 0), into n. done reports whether c was the last
// byte. It fails for a fifth byte and for a non-minimal encoding: a last
// byte of zero after a continuation byte encodes nothing the shorter form
// could not [MQTT-1.5.5-1].
func varintByte(n int, i int, c byte) (next int, done bool, ok bool) {
	n |= int(c&0x7f) << (7 * i)
	if c&0x80 == 0 {
		return n, true, i == 0 || c != 0
	}
	return n, false, i < 3
}
