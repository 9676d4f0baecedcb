package gossip

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
)

// maxKeyFile is the largest key file ReadKey reads: base64 of 32 bytes
// with a newline is 45 bytes.
const maxKeyFile = 4096

// ReadKey reads the group's key from a file: base64 (standard alphabet,
// padded or not) of 16, 24 or 32 bytes, surrounding white space ignored,
// or else exactly 16, 24 or 32 raw bytes. Base64 is tried first, so every
// gateway reading the same file gets the same key. Make one with
//
//	head -c 32 /dev/urandom | base64 > /etc/gatemq/peer.key
func ReadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("read key %s: %w: the file has more than %d bytes", path, ErrKeySize, maxKeyFile)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return key, nil
}

// parseKey decodes the contents of a key file (ReadKey).
func parseKey(b []byte) ([]byte, error) {
	text := bytes.TrimSpace(b)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if key, err := enc.DecodeString(string(text)); err == nil && validKeySize(len(key)) {
			return key, nil
		}
	}
	if validKeySize(len(b)) {
		return append([]byte(nil), b...), nil
	}
	return nil, fmt.Errorf("%w: the file has %d bytes", ErrKeySize, len(b))
}

func validKeySize(n int) bool { return n == 16 || n == 24 || n == 32 }
