package boltstore

import "errors"

var (
	// ErrClosed is returned by calls on a Store after Close.
	ErrClosed = errors.New("boltstore: store closed")
	// ErrQuota is returned for writes refused because the store's files
	// have reached Options.MaxBytes.
	ErrQuota = errors.New("boltstore: storage quota reached")
	// ErrCorrupt is returned when a record or key fails its checksum or
	// does not decode; the record is never returned as data.
	ErrCorrupt = errors.New("boltstore: corrupt record")
	// ErrShards is returned by Open when Options.NShards differs from the
	// number of shards the store was created with.
	ErrShards = errors.New("boltstore: number of shards differs from the store's")
	// ErrLocked is returned by Open when another process (a running
	// broker) holds the store's files.
	ErrLocked = errors.New("boltstore: store in use by another process")
	// ErrUnhealthy is returned by Healthy when a writer has stopped, hangs
	// in a commit or its last commit failed.
	ErrUnhealthy = errors.New("boltstore: writer unhealthy")
	// ErrKeyTooLong is returned for a write whose key would exceed
	// bbolt's limit: a client ID longer than MaxClientIDLen.
	ErrKeyTooLong = errors.New("boltstore: key too long")
	// ErrNotFound is returned by Archive.Get for an ID the archive does
	// not hold (never written, or dropped by retention or a cap).
	ErrNotFound = errors.New("boltstore: not found")
)

// MaxClientIDLen is the longest client ID whose session, cursors and
// assignments the store keeps: bbolt's key limit less room for what
// follows the client ID in a key. MQTT allows 65,535 bytes.
const MaxClientIDLen = 32768 - 64
