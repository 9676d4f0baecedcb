package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxString is the longest UTF-8 string or binary field: a two-byte length.
const maxString = 65535

// validUTF8 reports whether b is well-formed UTF-8 without U+0000
// [MQTT-1.5.3-1, MQTT-1.5.3-2 in 3.1.1; MQTT-1.5.4-1, MQTT-1.5.4-2 in v5].
// utf8.Valid also rejects the encodings of surrogates U+D800..U+DFFF and
// overlong forms, so a NUL can only appear as a zero byte.
func validUTF8(b []byte) bool {
	for i, c := range b {
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.Valid(b[i:]) && bytes.IndexByte(b[i:], 0) < 0
		}
	}
	return true
}

// validUTF8String is validUTF8 for a string.
func validUTF8String(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// binary reads a Binary Data field: a two-byte length and that many bytes.
// The result aliases the body; it is nil when the length is zero.
func (r *reader) binary(field string) ([]byte, error) {
	if len(r.b) < 2 {
		return nil, truncated(field)
	}
	n := int(binary.BigEndian.Uint16(r.b))
	if len(r.b) < 2+n {
		return nil, truncated(field)
	}
	b := r.b[2 : 2+n : 2+n]
	r.b = r.b[2+n:]
	if n == 0 {
		return nil, nil
	}
	return b, nil
}

// utf8 reads a UTF-8 Encoded String and checks it, returning the bytes
// without copying them.
func (r *reader) utf8(field string) ([]byte, error) {
	b, err := r.binary(field)
	if err != nil {
		return nil, err
	}
	if !validUTF8(b) {
		return nil, fmt.Errorf("read %s: invalid UTF-8: %w", field, MalformedPacket)
	}
	return b, nil
}

// string reads a UTF-8 Encoded String and returns a copy of it.
func (r *reader) string(field string) (string, error) {
	b, err := r.utf8(field)
	return string(b), err
}

// appendString appends a UTF-8 Encoded String or Binary Data field. A
// field longer than 65535 bytes cannot be encoded; that is a programmer
// error (a decoded field never is) and panics.
func appendString[S string | []byte](b []byte, s S) []byte {
	if len(s) > maxString {
		panic("packet: string or binary field longer than 65535 bytes")
	}
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func appendUint16(b []byte, n uint16) []byte { return append(b, byte(n>>8), byte(n)) }

func appendUint32(b []byte, n uint32) []byte {
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
