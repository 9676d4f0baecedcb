package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestAppend_Cases(t *testing.T) {
	for _, tc := range cases {
		if tc.err != 0 || tc.dir == decodeOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			got := Append(nil, tc.pk, tc.v)
			if !bytes.Equal(got, tc.raw) {
				t.Errorf("Append = %x\n          want %x", got, tc.raw)
			}
			if n := Size(tc.pk, tc.v); n != len(tc.raw) {
				t.Errorf("Size = %d, want %d", n, len(tc.raw))
			}
		})
	}
}

func TestDecode_Cases(t *testing.T) {
	for _, tc := range cases {
		if tc.dir == encodeOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			// The same result from Read over a byte reader, Read over a
			// plain reader that splits the input, and ReadHeader+Decode.
			pk, err := Read(bytes.NewReader(tc.raw), tc.v, 0)
			checkDecoded(t, "Read", tc, pk, err)
			pk, err = Read(newHalves(tc.raw), tc.v, 0)
			checkDecoded(t, "Read in halves", tc, pk, err)
			br := bytes.NewReader(tc.raw)
			h, err := ReadHeader(br)
			if err != nil {
				if tc.err == 0 || reasonOf(err) != tc.err {
					t.Fatalf("ReadHeader: %v", err)
				}
				return
			}
			body := tc.raw[len(tc.raw)-br.Len():]
			pk, err = Decode(h, body, tc.v)
			checkDecoded(t, "Decode", tc, pk, err)
		})
	}
}

func checkDecoded(t *testing.T, how string, tc codecCase, pk Packet, err error) {
	t.Helper()
	if tc.err == 0 {
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if !equalPackets(pk, tc.pk) {
			t.Fatalf("%s =\n %#v\nwant %#v", how, pk, tc.pk)
		}
		checkRoundTrip(t, pk, tc.v)
		return
	}
	if err == nil {
		t.Fatalf("%s = %#v, want error %v", how, pk, tc.err)
	}
	if r := reasonOf(err); r != tc.err {
		t.Fatalf("%s error %q has reason %v, want %v", how, err, r, tc.err)
	}
	want, _ := tc.pk.(*Connect)
	got, _ := pk.(*Connect)
	switch {
	case want == nil && pk != nil:
		t.Fatalf("%s returned %#v with error %v, want nil", how, pk, err)
	case want != nil && got == nil:
		t.Fatalf("%s returned %#v with error %v, want partial CONNECT", how, pk, err)
	case want != nil && (got.ProtocolName != want.ProtocolName || got.Version != want.Version):
		t.Fatalf("%s partial CONNECT %q level %d, want %q level %d", how,
			got.ProtocolName, got.Version, want.ProtocolName, want.Version)
	}
}

// TestCases_Coverage checks that the table has a valid and an invalid
// case for every packet type in every version it exists in.
func TestCases_Coverage(t *testing.T) {
	type key struct {
		t     Type
		v     Version
		valid bool
	}
	seen := map[key]bool{}
	for _, tc := range cases {
		if len(tc.raw) > 0 {
			seen[key{Type(tc.raw[0] >> 4), tc.v, tc.err == 0}] = true
		}
	}
	for typ := CONNECT; typ <= AUTH; typ++ {
		for _, v := range versions {
			for _, valid := range []bool{true, false} {
				if typ == AUTH && v != V5 && valid {
					continue
				}
				if !seen[key{typ, v, valid}] {
					t.Errorf("no %s case for %s valid=%t", typ, v, valid)
				}
			}
		}
	}
}

func TestRead_PacketTooLarge(t *testing.T) {
	raw := Append(nil, &Publish{Topic: "t", Payload: make([]byte, 100)}, V311)
	if _, err := Read(bytes.NewReader(raw), V311, len(raw)); err != nil {
		t.Fatalf("Read with maxSize = size: %v", err)
	}
	// The header claims 268435455 bytes but none follow: Read must fail
	// on the size without allocating or reading the body.
	huge := by(0x30, 0xff, 0xff, 0xff, 0x7f)
	for _, in := range [][]byte{raw, huge} {
		r := &countingReader{r: bytes.NewReader(in)}
		_, err := Read(r, V311, len(raw)-1)
		if reasonOf(err) != PacketTooLarge {
			t.Fatalf("Read = %v, want packet too large", err)
		}
		if r.n > 5 {
			t.Fatalf("Read consumed %d bytes, want only the fixed header", r.n)
		}
	}
	// The header claims 256 MiB: anything near that means the body was
	// allocated.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _ = Read(bytes.NewReader(huge), V311, 1024)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("10 Reads of an oversize packet allocated %d bytes", n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestRead_EOF(t *testing.T) {
	if _, err := Read(bytes.NewReader(nil), V5, 0); err != io.EOF {
		t.Fatalf("Read of empty input = %v, want io.EOF", err)
	}
	for _, in := range [][]byte{by(0x30), by(0x30, 0x80), by(0x30, 5, 0, 1), by(0xc0, 1)} {
		if _, err := Read(bytes.NewReader(in), V5, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Read(%x) = %v, want unexpected EOF", in, err)
		}
		if _, err := Read(newHalves(in), V5, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Read(%x) in halves = %v, want unexpected EOF", in, err)
		}
	}
}

// TestRead_Stream reads packets back to back from one buffered stream.
func TestRead_Stream(t *testing.T) {
	var stream []byte
	var want []Packet
	for _, tc := range cases {
		if tc.v == V5 && tc.err == 0 && tc.dir == both && Type(tc.raw[0]>>4) != CONNECT {
			stream = append(stream, tc.raw...)
			want = append(want, tc.pk)
		}
	}
	for _, r := range []io.Reader{bufio.NewReaderSize(bytes.NewReader(stream), 16), newHalves(stream)} {
		for i, w := range want {
			pk, err := Read(r, V5, 0)
			if err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			if !equalPackets(pk, w) {
				t.Fatalf("packet %d = %#v, want %#v", i, pk, w)
			}
		}
		if _, err := Read(r, V5, 0); err != io.EOF {
			t.Fatalf("Read at end = %v, want io.EOF", err)
		}
	}
}

func TestDecode_LengthMismatch(t *testing.T) {
	_, err := Decode(Header{Type: PINGREQ, Remaining: 1}, nil, V311)
	if reasonOf(err) != MalformedPacket {
		t.Fatalf("Decode = %v, want malformed packet", err)
	}
}

func TestDecode_ErrorNamesField(t *testing.T) {
	_, err := Read(bytes.NewReader(pkt(0x30, str("a\x80"))), V311, 0)
	if want := "decode PUBLISH: read topic name: invalid UTF-8: malformed packet"; err == nil || err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
}

func TestDecodePublish(t *testing.T) {
	raw := pkt(0x32, str("s/1"), by(0, 5), publishV5Props, []byte("p"))
	br := bytes.NewReader(raw)
	h, _ := ReadHeader(br)
	pk := Publish{Topic: "stale", Payload: []byte("stale")}
	if err := DecodePublish(h, raw[len(raw)-br.Len():], V5, &pk); err != nil {
		t.Fatal(err)
	}
	want := &Publish{QoS: 1, Topic: "s/1", PacketID: 5, Properties: publishV5Properties, Payload: []byte("p")}
	if !equalPackets(&pk, want) {
		t.Fatalf("DecodePublish = %#v, want %#v", pk, want)
	}
	if err := DecodePublish(Header{Type: PUBACK, Remaining: 2}, by(0, 1), V5, &pk); reasonOf(err) != MalformedPacket {
		t.Fatalf("DecodePublish of a PUBACK = %v", err)
	}
}

func TestHeader_Size(t *testing.T) {
	for _, n := range []int{0, 127, 128, 16383, 16384, 2097151, 2097152, MaxVarint} {
		want := 1 + len(vbi(n)) + n
		if got := (Header{Remaining: n}).Size(); got != want {
			t.Errorf("Size with remaining %d = %d, want %d", n, got, want)
		}
	}
}

func TestReadHeader_Varint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int
		err  Reason
	}{
		{by(0x00), 0, 0},
		{by(0x7f), 127, 0},
		{by(0x80, 0x01), 128, 0},
		{by(0xff, 0x7f), 16383, 0},
		{by(0x80, 0x80, 0x01), 16384, 0},
		{by(0xff, 0xff, 0x7f), 2097151, 0},
		{by(0x80, 0x80, 0x80, 0x01), 2097152, 0},
		{by(0xff, 0xff, 0xff, 0x7f), MaxVarint, 0},
		{by(0x80, 0x00), 0, MalformedPacket},
		{by(0xff, 0x80, 0x00), 0, MalformedPacket},
		{by(0x80, 0x80, 0x80, 0x00), 0, MalformedPacket},
		{by(0x80, 0x80, 0x80, 0x80, 0x01), 0, MalformedPacket},
	} {
		h, err := ReadHeader(bytes.NewReader(cat(by(0x30), tc.in)))
		if reasonOf(err) != tc.err || err == nil && h.Remaining != tc.want {
			t.Errorf("ReadHeader(%x) = %d, %v; want %d, %v", tc.in, h.Remaining, err, tc.want, tc.err)
		}
		if tc.err == 0 {
			if got := appendVarint(nil, tc.want); !bytes.Equal(got, tc.in) {
				t.Errorf("appendVarint(%d) = %x, want %x", tc.want, got, tc.in)
			}
			if varintLen(tc.want) != len(tc.in) {
				t.Errorf("varintLen(%d) = %d, want %d", tc.want, varintLen(tc.want), len(tc.in))
			}
		}
	}
}

func TestAppend_Panics(t *testing.T) {
	for name, f := range map[string]func(){
		"long topic":   func() { Append(nil, &Publish{Topic: strings.Repeat("a", 65536)}, V311) },
		"huge payload": func() { Append(nil, &Publish{Topic: "a", Payload: make([]byte, MaxVarint)}, V311) },
		"nil packet":   func() { Append(nil, nil, V311) },
		"nil size":     func() { Size(nil, V311) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestAppend_NoAllocs guards the broker's write path: encoding into a
// buffer with room allocates nothing.
func TestAppend_NoAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	for _, pk := range []Packet{
		&Publish{QoS: 1, Topic: "s/1", PacketID: 5, Properties: publishV5Properties, Payload: []byte("p")},
		&Publish{Topic: "a/b", Payload: []byte("hello")},
		&Puback{PacketID: 1}, &Pubrec{PacketID: 1, Reason: QuotaExceeded},
		&Pubrel{PacketID: 1, Properties: Properties{Present: set(PropReasonString), ReasonString: "x"}},
		&Pubcomp{PacketID: 1}, &Pingresp{},
		&Suback{PacketID: 1, Reasons: []Reason{1, 2}},
		&Disconnect{Reason: ServerShuttingDown},
		&Connack{Properties: connackV5Properties},
	} {
		for _, v := range versions {
			if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], pk, v) }); n != 0 {
				t.Errorf("Append(%T, %s) allocates %v times", pk, v, n)
			}
			if n := testing.AllocsPerRun(100, func() { _ = Size(pk, v) }); n != 0 {
				t.Errorf("Size(%T, %s) allocates %v times", pk, v, n)
			}
		}
	}
}

// TestDecode_PublishAllocs guards the read path: a PUBLISH costs the
// Publish and its topic, nothing for the payload.
func TestDecode_PublishAllocs(t *testing.T) {
	for _, v := range versions {
		raw := Append(nil, &Publish{QoS: 1, Topic: "sensors/1/temp", PacketID: 1, Payload: make([]byte, 512)}, v)
		br := bytes.NewReader(raw)
		h, _ := ReadHeader(br)
		body := raw[len(raw)-br.Len():]
		if n := testing.AllocsPerRun(100, func() { _, _ = Decode(h, body, v) }); n > 2 {
			t.Errorf("Decode in %s allocates %v times, want 2", v, n)
		}
		var pk Publish
		if n := testing.AllocsPerRun(100, func() { _ = DecodePublish(h, body, v, &pk) }); n > 1 {
			t.Errorf("DecodePublish in %s allocates %v times, want 1", v, n)
		}
	}
}

// AppendAck encodes what Append does for an acknowledgement without
// properties, in every version, with and without a reason code.
func TestAppendAckMatchesAppend(t *testing.T) {
	for _, v := range []Version{V31, V311, V5} {
		for _, r := range []Reason{Success, NoMatchingSubscribers, QuotaExceeded, UnspecifiedError} {
			for _, pk := range []Packet{
				&Puback{PacketID: 7, Reason: r}, &Pubrec{PacketID: 300, Reason: r},
				&Pubrel{PacketID: 1, Reason: r}, &Pubcomp{PacketID: 65535, Reason: r},
			} {
				want := Append(nil, pk, v)
				id := map[Type]uint16{PUBACK: 7, PUBREC: 300, PUBREL: 1, PUBCOMP: 65535}[pk.Type()]
				if got := AppendAck(nil, pk.Type(), id, r, v); !bytes.Equal(got, want) {
					t.Errorf("v%d %v %v: % x, want % x", v, pk.Type(), r, got, want)
				}
			}
		}
	}
}
