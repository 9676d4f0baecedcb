package packet

import (
	"encoding/binary"
	"fmt"
)

// reader consumes the body of a packet. Its methods fail with an error
// wrapping MalformedPacket and naming the field when the body ends before
// the field does [MQTT-1.5.4 in v5: a length past the packet is malformed].
type reader struct {
	b       []byte
	maxUser int // User Properties allowed in the packet, 0 for no cap
	users   int // User Properties read so far, in every property list
}

func (r *reader) len() int { return len(r.b) }

func truncated(field string) error {
	return fmt.Errorf("read %s: past end of packet: %w", field, MalformedPacket)
}

func (r *reader) byte(field string) (byte, error) {
	if len(r.b) < 1 {
		return 0, truncated(field)
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *reader) uint16(field string) (uint16, error) {
	if len(r.b) < 2 {
		return 0, truncated(field)
	}
	n := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return n, nil
}

func (r *reader) uint32(field string) (uint32, error) {
	if len(r.b) < 4 {
		return 0, truncated(field)
	}
	n := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return n, nil
}

// varint reads a Variable Byte Integer in its minimal encoding [MQTT-1.5.5-1].
func (r *reader) varint(field string) (int, error) {
	n := 0
	for i := 0; ; i++ {
		if i >= len(r.b) {
			return 0, truncated(field)
		}
		var done, ok bool
		if n, done, ok = varintByte(n, i, r.b[i]); !ok {
			return 0, fmt.Errorf("read %s: bad variable byte integer: %w", field, MalformedPacket)
		}
		if done {
			r.b = r.b[i+1:]
			return n, nil
		}
	}
}

// packetID reads a Packet Identifier, which is never 0: senders assign
// non-zero ones [MQTT-2.3.1-1 in 3.1.1, MQTT-2.2.1-3 in v5] and
// acknowledgements echo them.
func (r *reader) packetID() (uint16, error) {
	id, err := r.uint16("packet identifier")
	if err == nil && id == 0 {
		err = fmt.Errorf("read packet identifier: zero: %w", MalformedPacket)
	}
	return id, err
}

// rest returns the unread bytes, aliasing the body, or nil if none are left.
func (r *reader) rest() []byte {
	b := r.b
	r.b = nil
	if len(b) == 0 {
		return nil
	}
	return b
}

// end fails if bytes are left after the last field of a packet.
func (r *reader) end() error {
	if len(r.b) != 0 {
		return fmt.Errorf("%d bytes after last field: %w", len(r.b), MalformedPacket)
	}
	return nil
}
