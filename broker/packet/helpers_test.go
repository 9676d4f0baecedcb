package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

// Byte builders for the case table. They keep the raw bytes readable;
// pkt computes the Remaining Length so that a case cannot get it wrong by
// accident (cases that test the length itself spell the header out).

// cat joins byte slices.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// by is a literal byte slice.
func by(b ...byte) []byte { return b }

// str is a UTF-8 string or binary field: two-byte length, then s.
func str(s string) []byte {
	return cat(binary.BigEndian.AppendUint16(nil, uint16(len(s))), []byte(s))
}

// vbi is a Variable Byte Integer, written independently of the codec.
func vbi(n int) []byte {
	var b []byte
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 128
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

// pkt is a whole packet: first byte, Remaining Length, body.
func pkt(first byte, body ...[]byte) []byte {
	bd := cat(body...)
	return cat(by(first), vbi(len(bd)), bd)
}

// props is a v5 property block: Property Length, then the properties.
func props(ps ...[]byte) []byte {
	p := cat(ps...)
	return cat(vbi(len(p)), p)
}

func pByte(id PropID, v byte) []byte { return by(byte(id), v) }
func pU16(id PropID, v uint16) []byte {
	return binary.BigEndian.AppendUint16(by(byte(id)), v)
}
func pU32(id PropID, v uint32) []byte {
	return binary.BigEndian.AppendUint32(by(byte(id)), v)
}
func pStr(id PropID, s string) []byte { return cat(by(byte(id)), str(s)) }
func pVar(id PropID, n int) []byte    { return cat(by(byte(id)), vbi(n)) }
func pUser(k, v string) []byte {
	return cat(by(byte(PropUserProperty)), str(k), str(v))
}

// set builds a PropSet.
func set(ids ...PropID) PropSet {
	var s PropSet
	for _, id := range ids {
		s.Add(id)
	}
	return s
}

// normalise sets every empty slice reachable from v to nil, so that
// reflect.DeepEqual does not tell nil from empty.
func normalise(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			normalise(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			normalise(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if v.CanSet() {
				v.SetZero()
			}
			return
		}
		for i := range v.Len() {
			normalise(v.Index(i))
		}
	}
}

// equalPackets reports whether a and b are the same packet, nil and empty
// slices alike.
func equalPackets(a, b Packet) bool {
	normalise(reflect.ValueOf(a))
	normalise(reflect.ValueOf(b))
	return reflect.DeepEqual(a, b)
}

// reasonOf returns the Reason err wraps, or 0 if none.
func reasonOf(err error) Reason {
	var r Reason
	if errors.As(err, &r) {
		return r
	}
	return 0
}

// halves is an io.Reader (and not an io.ByteReader) that returns its
// input in two parts, so that Read must cope with short reads.
type halves struct {
	parts [][]byte
}

func newHalves(b []byte) *halves {
	return &halves{parts: [][]byte{b[:len(b)/2], b[len(b)/2:]}}
}

func (h *halves) Read(p []byte) (int, error) {
	for len(h.parts) > 0 && len(h.parts[0]) == 0 {
		h.parts = h.parts[1:]
	}
	if len(h.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, h.parts[0])
	h.parts[0] = h.parts[0][n:]
	return n, nil
}

// encodeVersion is the version to re-encode a decoded packet with: the
// connection's, or for CONNECT its own.
func encodeVersion(pk Packet, v Version) Version {
	if c, ok := pk.(*Connect); ok {
		return c.Version
	}
	return v
}

// checkRoundTrip encodes pk, checks Size, decodes the bytes again and
// checks the result equals pk.
func checkRoundTrip(t *testing.T, pk Packet, v Version) {
	t.Helper()
	ev := encodeVersion(pk, v)
	enc := Append(nil, pk, ev)
	if n := Size(pk, ev); n != len(enc) {
		t.Fatalf("Size = %d, Append wrote %d bytes", n, len(enc))
	}
	// Append must append, not overwrite.
	prefix := []byte("prefix")
	if got := Append(prefix[:len(prefix):len(prefix)], pk, ev); !bytes.Equal(got, cat(prefix, enc)) {
		t.Fatalf("Append to a non-empty slice = %x, want %x", got, cat(prefix, enc))
	}
	pk2, err := Read(bytes.NewReader(enc), ev, 0)
	if err != nil {
		t.Fatalf("decode of re-encoded %T (%x): %v", pk, enc, err)
	}
	if !equalPackets(pk, pk2) {
		t.Fatalf("round trip changed the packet:\n got %#v\nwant %#v\nbytes %x", pk2, pk, enc)
	}
}
