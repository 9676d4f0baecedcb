package packet

import (
	"bytes"
	"testing"
)

var benchPublish = &Publish{
	QoS:      1,
	Topic:    "gateway/7/sensors/temperature",
	PacketID: 42,
	Properties: Properties{
		Present:       set(PropMessageExpiry, PropPayloadFormat),
		MessageExpiry: 3600,
		PayloadFormat: 1,
	},
	Payload: bytes.Repeat([]byte("x"), 256),
}

func BenchmarkAppendPublish(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		b.Run(v.String(), func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(Size(benchPublish, v)))
			for b.Loop() {
				buf = Append(buf[:0], benchPublish, v)
			}
		})
	}
}

func BenchmarkAppendPuback(b *testing.B) {
	pk := &Puback{PacketID: 42}
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], pk, V5)
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		raw := Append(nil, benchPublish, v)
		br := bytes.NewReader(raw)
		h, _ := ReadHeader(br)
		body := raw[len(raw)-br.Len():]
		b.Run(v.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Decode(h, body, v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(v.String()+"/into", func(b *testing.B) {
			var pk Publish
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := DecodePublish(h, body, v, &pk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	raw := Append(nil, benchPublish, V5)
	r := bytes.NewReader(raw)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		r.Reset(raw)
		if _, err := Read(r, V5, 0); err != nil {
			b.Fatal(err)
		}
	}
}
