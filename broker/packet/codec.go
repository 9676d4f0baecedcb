package packet

import (
	"errors"
	"fmt"
	"io"
)

// Decode decodes the body of a packet whose fixed header h was read with
// ReadHeader; len(body) must be h.Remaining. v is the protocol version
// negotiated on the connection; it is ignored for CONNECT, which carries
// its own. It checks the fixed-header flags, then the packet.
//
// Decoded packets alias body for their []byte fields (Payload,
// CorrelationData, AuthData, Password, WillPayload), so the caller must
// not reuse body while it uses the packet; strings are copies.
//
// Errors wrap a Reason (see the package documentation). For CONNECT,
// once the protocol name and level have been read, Decode returns the
// partly decoded *Connect along with any error; every other error comes
// with a nil Packet. Decode is safe for concurrent use.
func Decode(h Header, body []byte, v Version) (Packet, error) {
	return DecodeOptions{}.Decode(h, body, v)
}

// Decode is the package's Decode with the limits of o.
func (o DecodeOptions) Decode(h Header, body []byte, v Version) (Packet, error) {
	if len(body) != h.Remaining {
		return nil, fmt.Errorf("decode %s: body of %d bytes, remaining length %d: %w",
			h.Type, len(body), h.Remaining, MalformedPacket)
	}
	if err := checkHeader(h, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", h.Type, err)
	}
	pk, err := decode(h, body, v, o.MaxUserProperties)
	if err != nil {
		err = fmt.Errorf("decode %s: %w", h.Type, err)
		if c, ok := pk.(*Connect); !ok || c == nil {
			return nil, err
		}
	}
	return pk, err
}

// decode dispatches on the packet type once the header is checked.
func decode(h Header, body []byte, v Version, maxUser int) (Packet, error) {
	switch h.Type {
	case CONNECT:
		pk, err := decodeConnect(body, maxUser)
		if pk == nil {
			return nil, err
		}
		return pk, err
	case CONNACK:
		pk := new(Connack)
		return pk, pk.decode(body, v, maxUser)
	case PUBLISH:
		pk := new(Publish)
		return pk, pk.decode(h, body, v, maxUser)
	case PUBACK:
		pk := new(Puback)
		return pk, (*ack)(pk).decode(PUBACK, body, v, maxUser)
	case PUBREC:
		pk := new(Pubrec)
		return pk, (*ack)(pk).decode(PUBREC, body, v, maxUser)
	case PUBREL:
		pk := new(Pubrel)
		return pk, (*ack)(pk).decode(PUBREL, body, v, maxUser)
	case PUBCOMP:
		pk := new(Pubcomp)
		return pk, (*ack)(pk).decode(PUBCOMP, body, v, maxUser)
	case SUBSCRIBE:
		pk := new(Subscribe)
		return pk, pk.decode(body, v, maxUser)
	case SUBACK:
		pk := new(Suback)
		return pk, pk.decode(body, v, maxUser)
	case UNSUBSCRIBE:
		pk := new(Unsubscribe)
		return pk, pk.decode(body, v, maxUser)
	case UNSUBACK:
		pk := new(Unsuback)
		return pk, pk.decode(body, v, maxUser)
	case PINGREQ:
		return new(Pingreq), decodeEmpty(body)
	case PINGRESP:
		return new(Pingresp), decodeEmpty(body)
	case DISCONNECT:
		pk := new(Disconnect)
		return pk, pk.decode(body, v, maxUser)
	case AUTH:
		pk := new(Auth)
		return pk, pk.decode(body, maxUser)
	}
	return nil, fmt.Errorf("packet type %d: %w", h.Type, MalformedPacket)
}

// DecodePublish is Decode for a PUBLISH into a caller-owned pk, which it
// overwrites; it saves the allocation of the Publish. h.Type must be
// PUBLISH. The aliasing and error rules are those of Decode.
func DecodePublish(h Header, body []byte, v Version, pk *Publish) error {
	return DecodeOptions{}.DecodePublish(h, body, v, pk)
}

// DecodePublish is the package's DecodePublish with the limits of o.
func (o DecodeOptions) DecodePublish(h Header, body []byte, v Version, pk *Publish) error {
	*pk = Publish{}
	if h.Type != PUBLISH {
		return fmt.Errorf("decode %s as PUBLISH: %w", h.Type, MalformedPacket)
	}
	if len(body) != h.Remaining {
		return fmt.Errorf("decode PUBLISH: body of %d bytes, remaining length %d: %w",
			len(body), h.Remaining, MalformedPacket)
	}
	if err := checkHeader(h, v); err != nil {
		return fmt.Errorf("decode PUBLISH: %w", err)
	}
	if err := pk.decode(h, body, v, o.MaxUserProperties); err != nil {
		return fmt.Errorf("decode PUBLISH: %w", err)
	}
	return nil
}

// Read reads one whole packet from r and decodes it as Decode does, for
// protocol version v. If maxSize > 0, a packet larger than maxSize bytes
// (fixed header included) yields an error wrapping PacketTooLarge before
// the body is allocated or read; the body is then left unread in r, and
// the connection cannot be used further. With maxSize 0 the body may be
// as large as the Remaining Length allows (256 MiB).
//
// Read reads the fixed header one byte at a time, so r should be
// buffered; an io.ByteReader such as *bufio.Reader is used as such. It
// returns io.EOF unwrapped only when r ends before the first byte of a
// packet; an end inside a packet is io.ErrUnexpectedEOF, wrapped. The
// body is allocated for each packet and aliased by the packet returned.
// Read blocks as r does; it is not safe to call concurrently on one r.
func Read(r io.Reader, v Version, maxSize int) (Packet, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = &byteReader{r: r}
	}
	h, err := ReadHeader(br)
	if err != nil {
		return nil, err
	}
	if maxSize > 0 && h.Size() > maxSize {
		return nil, fmt.Errorf("read %s: packet of %d bytes, maximum %d: %w", h.Type, h.Size(), maxSize, PacketTooLarge)
	}
	if err := checkHeader(h, v); err != nil {
		return nil, fmt.Errorf("read %s: %w", h.Type, err)
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s body: %w", h.Type, err)
	}
	return Decode(h, body, v)
}

// byteReader reads single bytes from an io.Reader without buffering, so
// that nothing past the fixed header is consumed.
type byteReader struct {
	r   io.Reader
	buf [1]byte
}

func (b *byteReader) ReadByte() (byte, error) {
	if _, err := io.ReadFull(b.r, b.buf[:]); err != nil {
		return 0, err
	}
	return b.buf[0], nil
}

// Append appends the wire encoding of pk for protocol version v to b and
// returns the extended slice. For v before V5 the v5-only parts are left
// out: properties, and reason codes where 3.x has none. Properties are
// written in ascending identifier order, then the User Properties in
// order; properties the packet cannot carry are left out. A v5 reason
// code and Property Length are left out where the specification allows
// it (acks, DISCONNECT, AUTH with Success and no properties).
//
// For *Connect, v chooses the layout; ProtocolName and Version are
// written as set, defaulting to those of v when empty. The flags
// (WillFlag, UsernameFlag, PasswordFlag) decide which fields are written.
// *Auth is always written in its v5 form, and a 3.x *Disconnect is empty.
// A *Connack carries Session Present only with Success [MQTT-3.2.2-6], and
// a *Subscribe only its first Subscription Identifier.
//
// Append does not validate pk (a test can send a malformed packet) and
// does not allocate beyond growing b. It panics on programmer errors: a
// Packet of another type, a string or binary field longer than 65535
// bytes, or a packet larger than MaxVarint. It is safe for concurrent use
// as long as pk is not modified meanwhile.
func Append(b []byte, pk Packet, v Version) []byte {
	switch pk := pk.(type) {
	case *Publish:
		return appendPublish(b, pk, v)
	case *Puback:
		return (*ack)(pk).appendTo(b, PUBACK, v)
	case *Pubrec:
		return (*ack)(pk).appendTo(b, PUBREC, v)
	case *Pubrel:
		return (*ack)(pk).appendTo(b, PUBREL, v)
	case *Pubcomp:
		return (*ack)(pk).appendTo(b, PUBCOMP, v)
	case *Connect:
		return appendConnect(b, pk, v)
	case *Connack:
		return appendConnack(b, pk, v)
	case *Subscribe:
		return appendSubscribe(b, pk, v)
	case *Suback:
		return appendSuback(b, pk, v)
	case *Unsubscribe:
		return appendUnsubscribe(b, pk, v)
	case *Unsuback:
		return appendUnsuback(b, pk, v)
	case *Pingreq:
		return appendEmpty(b, PINGREQ)
	case *Pingresp:
		return appendEmpty(b, PINGRESP)
	case *Disconnect:
		return appendDisconnect(b, pk, v)
	case *Auth:
		return appendAuth(b, pk)
	}
	panic(fmt.Sprintf("packet: cannot encode %T", pk))
}

// Size returns len(Append(nil, pk, v)) without encoding: the size that
// the peer's Maximum Packet Size limits. It panics for a Packet of
// another type.
func Size(pk Packet, v Version) int {
	var n int
	switch pk := pk.(type) {
	case *Publish:
		n, _ = pk.remaining(v)
	case *Puback:
		n, _ = (*ack)(pk).remaining(v)
	case *Pubrec:
		n, _ = (*ack)(pk).remaining(v)
	case *Pubrel:
		n, _ = (*ack)(pk).remaining(v)
	case *Pubcomp:
		n, _ = (*ack)(pk).remaining(v)
	case *Connect:
		n, _, _ = pk.remaining(v)
	case *Connack:
		n, _ = pk.remaining(v)
	case *Subscribe:
		n, _ = pk.remaining(v)
	case *Suback:
		n, _ = pk.remaining(v)
	case *Unsubscribe:
		n, _ = pk.remaining(v)
	case *Unsuback:
		n, _ = pk.remaining(v)
	case *Pingreq, *Pingresp:
		n = 0
	case *Disconnect:
		n, _ = pk.remaining(v)
	case *Auth:
		n, _ = pk.remaining()
	default:
		panic(fmt.Sprintf("packet: cannot size %T", pk))
	}
	return 1 + varintLen(n) + n
}
