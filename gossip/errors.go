package gossip

import "errors"

// ErrClosed is returned by Leave after Shutdown.
var ErrClosed = errors.New("peer group shut down")

// ErrKeySize is returned by ReadKey when the file holds neither base64
// of 16, 24 or 32 bytes nor 16, 24 or 32 raw bytes.
var ErrKeySize = errors.New("want a key of 16, 24 or 32 bytes, base64 or raw")
