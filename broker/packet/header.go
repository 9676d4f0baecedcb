package packet

import (
	"fmt"
	"io"
)

// ReadHeader reads the fixed header: one byte of packet type and flags,
// then the Remaining Length as a Variable Byte Integer of at most four
// bytes in its minimal encoding [MQTT-1.5.5-1]; anything else is an error
// wrapping MalformedPacket. It returns io.EOF unwrapped when r ends before
// the first byte, and io.ErrUnexpectedEOF (wrapped) when it ends inside
// the header. It does not check the type or flags: Decode and Read do.
// It blocks as r does.
func ReadHeader(r io.ByteReader) (Header, error) {
	c, err := r.ReadByte()
	if err != nil {
		return Header{}, err
	}
	h := Header{Type: Type(c >> 4), Flags: c & 0x0f}
	n := 0
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, fmt.Errorf("read remaining length: %w", err)
		}
		var done, ok bool
		if n, done, ok = varintByte(n, i, c); !ok {
			return Header{}, fmt.Errorf("read remaining length: %w", MalformedPacket)
		}
		if done {
			h.Remaining = n
			return h, nil
		}
	}
}

// Size returns the size of the whole packet: the fixed header plus the
// Remaining Length. It is the size that the Maximum Packet Size property
// limits [MQTT-3.1.2.11.4 in v5].
func (h Header) Size() int { return 1 + varintLen(h.Remaining) + h.Remaining }

// checkHeader checks the packet type and the reserved flag bits of the
// fixed header for protocol version v.
func checkHeader(h Header, v Version) error {
	switch h.Type {
	case 0:
		// Type 0 is reserved in every version [MQTT-2.2.1 in 3.1.1].
		return fmt.Errorf("packet type 0: %w", MalformedPacket)
	case PUBLISH:
		qos := h.Flags >> 1 & 3
		if qos == 3 {
			// [MQTT-3.3.1-4]
			return fmt.Errorf("publish qos 3: %w", MalformedPacket)
		}
		if qos == 0 && h.Flags&8 != 0 {
			// [MQTT-3.3.1-2]; v5 says MUST NOT without naming the error,
			// and we treat it as malformed there too.
			return fmt.Errorf("publish dup flag with qos 0: %w", MalformedPacket)
		}
		return nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		// [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]: flags 0010.
		// MQTT 3.1 sent these with QoS 1 and allowed DUP on a resend,
		// so for 3.1 we also accept 1010.
		if h.Flags == 0x2 || v == V31 && h.Flags == 0xa {
			return nil
		}
	case AUTH:
		if v != V5 {
			// Type 15 is reserved before v5.
			return fmt.Errorf("packet type 15 in MQTT %s: %w", v, MalformedPacket)
		}
		fallthrough
	default:
		// [MQTT-2.2.2-1 in 3.1.1, MQTT-2.1.3-1 in v5]: reserved flags are 0.
		if h.Flags == 0 {
			return nil
		}
	}
	return fmt.Errorf("%s fixed header flags %04b: %w", h.Type, h.Flags, MalformedPacket)
}

// appendHeader appends the fixed header of a packet.
func appendHeader(b []byte, t Type, flags byte, remaining int) []byte {
	b = append(b, byte(t)<<4|flags)
	return appendVarint(b, remaining)
}
