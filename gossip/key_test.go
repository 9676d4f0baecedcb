package gossip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadKey(t *testing.T) {
	k16, k24, k32 := bytes.Repeat([]byte{0xa1}, 16), bytes.Repeat([]byte{0xb2}, 24), bytes.Repeat([]byte{0xc3}, 32)
	for _, tc := range []struct {
		name    string
		content []byte
		want    []byte
		err     error
	}{
		{"base64 of 32 bytes with newline", []byte(base64.StdEncoding.EncodeToString(k32) + "\n"), k32, nil},
		{"base64 of 16 bytes, spaces", []byte("  " + base64.StdEncoding.EncodeToString(k16) + " \r\n"), k16, nil},
		{"base64 of 24 bytes, unpadded", []byte(base64.RawStdEncoding.EncodeToString(k24)), k24, nil},
		{"raw 32 bytes", k32, k32, nil},
		{"raw 16 bytes ending in a newline", append(bytes.Repeat([]byte{1}, 15), '\n'), append(bytes.Repeat([]byte{1}, 15), '\n'), nil},
		{"base64 of 20 bytes", []byte(base64.StdEncoding.EncodeToString(make([]byte, 20))), nil, ErrKeySize},
		{"empty", nil, nil, ErrKeySize},
		{"too long", bytes.Repeat([]byte{'A'}, 5000), nil, ErrKeySize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peer.key")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadKey(path)
			if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
				t.Fatalf("ReadKey = %x, %v; want %x, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := ReadKey(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
