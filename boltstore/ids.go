package boltstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
)

// SiteID identifies one gateway's store. It is random, made at first
// start and kept for the life of the data directory.
type SiteID [8]byte

func newSiteID() (SiteID, error) {
	var s SiteID
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("make site ID: %w", err)
	}
	return s, nil
}

func (s SiteID) String() string { return hex.EncodeToString(s[:]) }

// ShardID is a shard: the publisher's client ID hashed modulo the number
// of shards.
type ShardID uint16

// Gen is a generation: the index of a time slice of GenerationInterval
// since the Unix epoch.
type Gen uint32

// StreamID is a stream within a generation: the topics of one learned
// structure.
type StreamID uint32

// StreamKey names one stream of one shard of one generation of one site:
// an ordered log with one writer.
type StreamKey struct {
	Site   SiteID
	Shard  ShardID
	Gen    Gen
	Stream StreamID
}

// RecordID is the stable identity of a stored message: its stream and
// its sequence number there (from 1).
type RecordID struct {
	StreamKey
	Seq uint64
}

func (k StreamKey) String() string {
	return fmt.Sprintf("%s/%d/%d/%d", k.Site, k.Shard, k.Gen, k.Stream)
}

func (id RecordID) String() string { return fmt.Sprintf("%s/%d", id.StreamKey, id.Seq) }

// ShardOf returns the shard of a publisher's client ID among n shards.
func ShardOf(clientID string, n int) ShardID {
	h := fnv.New32a()
	h.Write([]byte(clientID))
	return ShardID(h.Sum32() % uint32(n))
}

// bucketName is the generation file's bucket holding one stream:
// "s" site shard stream, integers big-endian.
func (k StreamKey) bucketName() []byte {
	b := make([]byte, 0, 15)
	b = append(b, 's')
	b = append(b, k.Site[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(k.Shard))
	return binary.BigEndian.AppendUint32(b, uint32(k.Stream))
}

// parseBucketName is the inverse of bucketName; ok is false for other
// buckets.
func parseBucketName(name []byte, g Gen) (k StreamKey, ok bool) {
	if len(name) != 15 || name[0] != 's' {
		return k, false
	}
	copy(k.Site[:], name[1:9])
	k.Shard = ShardID(binary.BigEndian.Uint16(name[9:11]))
	k.Stream = StreamID(binary.BigEndian.Uint32(name[11:15]))
	k.Gen = g
	return k, true
}

// Bytes returns the binary form of k, for callers that keep cursors: 18 bytes,
// big-endian, so that keys sort by site, generation, shard, stream.
func (k StreamKey) Bytes() []byte {
	b := make([]byte, 0, 18)
	b = append(b, k.Site[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(k.Gen))
	b = binary.BigEndian.AppendUint16(b, uint16(k.Shard))
	b = binary.BigEndian.AppendUint32(b, uint32(k.Stream))
	return b
}

// ParseStreamKey is the inverse of StreamKey.Bytes.
func ParseStreamKey(b []byte) (StreamKey, error) {
	var k StreamKey
	if len(b) != 18 {
		return k, fmt.Errorf("stream key of %d bytes: %w", len(b), ErrCorrupt)
	}
	copy(k.Site[:], b[:8])
	k.Gen = Gen(binary.BigEndian.Uint32(b[8:12]))
	k.Shard = ShardID(binary.BigEndian.Uint16(b[12:14]))
	k.Stream = StreamID(binary.BigEndian.Uint32(b[14:18]))
	return k, nil
}

// Bytes returns the binary form of id: its stream key's 18 bytes and
// its sequence number, big-endian (26 bytes).
func (id RecordID) Bytes() []byte {
	return binary.BigEndian.AppendUint64(id.StreamKey.Bytes(), id.Seq)
}

// ParseRecordID is the inverse of RecordID.Bytes.
func ParseRecordID(b []byte) (RecordID, error) {
	if len(b) != 26 {
		return RecordID{}, fmt.Errorf("record ID of %d bytes: %w", len(b), ErrCorrupt)
	}
	k, err := ParseStreamKey(b[:18])
	if err != nil {
		return RecordID{}, err
	}
	return RecordID{StreamKey: k, Seq: binary.BigEndian.Uint64(b[18:])}, nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
