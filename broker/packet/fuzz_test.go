package packet

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// fuzzVersion maps any byte to one of the three versions.
func fuzzVersion(b byte) Version { return versions[int(b)%len(versions)] }

func versionIndex(v Version) byte {
	for i, w := range versions {
		if w == v {
			return byte(i)
		}
	}
	return 0
}

// checkDecodeResult checks what any decode returned: an error wraps a
// Reason (or is an I/O error), only a CONNECT comes with an error, and a
// packet re-encodes and decodes to itself.
func checkDecodeResult(t *testing.T, pk Packet, err error, v Version) {
	t.Helper()
	if err != nil {
		if reasonOf(err) == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("error %q wraps no reason", err)
		}
		if pk != nil {
			if c, ok := pk.(*Connect); !ok || c == nil {
				t.Fatalf("%T returned with error %v", pk, err)
			}
		}
		return
	}
	checkRoundTrip(t, pk, v)
}

// FuzzRead feeds whole packets to Read in each version, through a
// byte reader and through a plain reader that returns them in two parts.
func FuzzRead(f *testing.F) {
	for _, tc := range cases {
		f.Add(versionIndex(tc.v), tc.raw)
	}
	f.Fuzz(func(t *testing.T, vb byte, raw []byte) {
		v := fuzzVersion(vb)
		pk, err := Read(bytes.NewReader(raw), v, 0)
		checkDecodeResult(t, pk, err, v)

		pk2, err2 := Read(newHalves(raw), v, 0)
		if (err == nil) != (err2 == nil) || reasonOf(err) != reasonOf(err2) {
			t.Fatalf("Read = %v, in halves = %v", err, err2)
		}
		if err == nil && !equalPackets(pk, pk2) {
			t.Fatalf("Read = %#v, in halves = %#v", pk, pk2)
		}

		// A limit below the packet's size fails before the body.
		if h, herr := ReadHeader(bytes.NewReader(raw)); herr == nil && h.Size() > 1 {
			_, err := Read(bytes.NewReader(raw), v, h.Size()-1)
			if reasonOf(err) != PacketTooLarge {
				t.Fatalf("Read with maxSize %d of a %d-byte packet = %v", h.Size()-1, h.Size(), err)
			}
		}
	})
}

// FuzzDecode feeds any first byte and body to Decode, so that every
// decoder sees bodies whose header is right.
func FuzzDecode(f *testing.F) {
	for _, tc := range cases {
		br := bytes.NewReader(tc.raw)
		if _, err := ReadHeader(br); err == nil {
			f.Add(versionIndex(tc.v), tc.raw[0], tc.raw[len(tc.raw)-br.Len():])
		}
	}
	f.Fuzz(func(t *testing.T, vb, first byte, body []byte) {
		v := fuzzVersion(vb)
		h := Header{Type: Type(first >> 4), Flags: first & 0x0f, Remaining: len(body)}
		pk, err := Decode(h, body, v)
		checkDecodeResult(t, pk, err, v)
		if h.Type == PUBLISH {
			var p Publish
			perr := DecodePublish(h, body, v, &p)
			if reasonOf(perr) != reasonOf(err) || err == nil && !equalPackets(&p, pk) {
				t.Fatalf("DecodePublish = %v, Decode = %v", perr, err)
			}
		}
		// With a cap on User Properties, a packet the uncapped decoder
		// accepts decodes the same when within the cap and fails with
		// QuotaExceeded when over it.
		const maxUser = 2
		lpk, lerr := DecodeOptions{MaxUserProperties: maxUser}.Decode(h, body, v)
		if err == nil {
			n := len(userProps(pk))
			switch {
			case n <= maxUser && (lerr != nil || !equalPackets(lpk, pk)):
				t.Fatalf("%d user properties: capped Decode = %v, uncapped Decode = %+v", n, lerr, pk)
			case n > maxUser && reasonOf(lerr) != QuotaExceeded:
				t.Fatalf("%d user properties: capped Decode = %v, want quota exceeded", n, lerr)
			}
		}
	})
}

// userProps returns every User Property of pk, the will's included.
func userProps(pk Packet) []UserProperty {
	if c, ok := pk.(*Connect); ok {
		return append(append([]UserProperty(nil), c.Properties.User...), c.WillProperties.User...)
	}
	if f := reflect.ValueOf(pk).Elem().FieldByName("Properties"); f.IsValid() {
		return f.Interface().(Properties).User
	}
	return nil
}

// FuzzTopic checks the topic validators against each other and against
// the decoder: a valid name is a valid filter, and a PUBLISH carries
// exactly the valid names.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"a/b", "a/+/c", "#", "a/#/b", "$share/g/a", "$share//a", "+a", "", "\x00", "a\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		nameErr := ValidTopicName(s)
		filterErr := ValidTopicFilter(s)
		if nameErr != nil && reasonOf(nameErr) != TopicNameInvalid {
			t.Fatalf("ValidTopicName error %v", nameErr)
		}
		if filterErr != nil && reasonOf(filterErr) != TopicFilterInvalid {
			t.Fatalf("ValidTopicFilter error %v", filterErr)
		}
		if nameErr == nil && filterErr != nil && !strings.HasPrefix(s, sharePrefix) {
			t.Fatalf("%q is a valid name but not a valid filter: %v", s, filterErr)
		}
		if len(s) > 65535 {
			return
		}
		_, err := Read(bytes.NewReader(pkt(0x30, str(s))), V311, 0)
		if (err == nil) != (nameErr == nil) {
			t.Fatalf("PUBLISH to %q: %v, ValidTopicName: %v", s, err, nameErr)
		}
	})
}
