package boltstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record is a stored message as the store sees it: a topic, a payload and
// the caller's opaque metadata (QoS, flags, properties), with the time it
// was written.
type Record struct {
	ID      RecordID
	Time    int64 // unix nanoseconds, when it was appended
	Topic   string
	Meta    []byte
	Payload []byte
}

const recordVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord returns a record's value: version, time, topic, meta,
// payload, and a CRC-32C over the key and everything before it, so that
// a flipped byte or a record under the wrong key is detected.
//
//	[0]      version (1)
//	[1:9]    time, unix nanoseconds, big-endian
//	[9:11]   topic length n, big-endian
//	[11:11+n] topic
//	next 4   meta length m, big-endian
//	next m   meta
//	...      payload
//	last 4   CRC-32C (Castagnoli) of key || all of the above
func encodeRecord(dst, key []byte, time int64, topic string, meta, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(time))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(topic)))
	dst = append(dst, topic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(meta)))
	dst = append(dst, meta...)
	dst = append(dst, payload...)
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, dst[start:])
	return binary.BigEndian.AppendUint32(dst, crc)
}

// decodeRecord checks and decodes a record value. The returned Meta and
// Payload are copies: bbolt's memory is valid only inside a transaction.
func decodeRecord(key, v []byte) (Record, error) {
	var r Record
	if len(v) < 1+8+2+4+4 {
		return r, fmt.Errorf("record of %d bytes: %w", len(v), ErrCorrupt)
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, body) != sum {
		return r, fmt.Errorf("checksum mismatch: %w", ErrCorrupt)
	}
	if body[0] != recordVersion {
		return r, fmt.Errorf("record version %d: %w", body[0], ErrCorrupt)
	}
	r.Time = int64(binary.BigEndian.Uint64(body[1:9]))
	n := int(binary.BigEndian.Uint16(body[9:11]))
	rest := body[11:]
	if len(rest) < n+4 {
		return r, fmt.Errorf("topic length %d: %w", n, ErrCorrupt)
	}
	r.Topic = string(rest[:n])
	rest = rest[n:]
	m := int(binary.BigEndian.Uint32(rest[:4]))
	rest = rest[4:]
	if m > len(rest) {
		return r, fmt.Errorf("meta length %d: %w", m, ErrCorrupt)
	}
	buf := make([]byte, len(rest))
	copy(buf, rest)
	r.Meta, r.Payload = buf[:m:m], buf[m:]
	return r, nil
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
