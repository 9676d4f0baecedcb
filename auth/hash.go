package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// params are the argon2id cost parameters of one hash.
type params struct {
	memory  uint32 // KiB
	time    uint32 // passes over memory
	threads uint8  // lanes
}

// defaultParams are the parameters of new hashes: OWASP's minimum for
// argon2id (Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1). One
// check holds 19 MiB and, with the checks bounded to one per CPU, a 4-core
// gateway needs at most 76 MiB for a connect storm; a check takes about
// 30 ms on a 2 GHz x86 core, several times that on a Cortex-A53, where Go's
// argon2 has no assembly. Each line stores its parameters, so raising them
// later leaves old lines valid; running passwd again rehashes a user.
var defaultParams = params{memory: 19456, time: 2, threads: 1}

const (
	saltLen = 16 // bytes: the argon2 RFC 9106 recommendation
	keyLen  = 32 // bytes

	// Bounds on the parameters a password file may use, so that a typo
	// cannot make every CONNECT take a minute or a gigabyte.
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 100
)

// argon2Version is the only argon2 version accepted: 0x13, written v=19.
const argon2Version = 19

// hash is a decoded argon2id PHC string.
type hash struct {
	p    params
	salt []byte
	key  []byte
}

// HashPassword returns an argon2id hash of password in PHC string format,
// $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH, with a random 16-byte salt.
// It returns ErrEmptyPassword for an empty password. It takes about as
// long as one Check and is safe for concurrent use.
func HashPassword(password []byte) (string, error) {
	h, err := newHash(password, defaultParams)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func newHash(password []byte, p params) (hash, error) {
	if len(password) == 0 {
		return hash{}, ErrEmptyPassword
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // crypto/rand.Read never returns an error since Go 1.24
	return hash{p: p, salt: salt, key: deriveKey(password, salt, p, keyLen)}, nil
}

// deriveKey is argon2id.
func deriveKey(password, salt []byte, p params, n uint32) []byte {
	return argon2.IDKey(password, salt, p.time, p.memory, p.threads, n)
}

var b64 = base64.RawStdEncoding.Strict()

// String returns h in PHC string format.
func (h hash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2Version,
		h.p.memory, h.p.time, h.p.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parseHash decodes an argon2id PHC string as HashPassword writes it. It
// is strict: parameters in the order m, t, p, decimal without leading
// zeros, unpadded canonical base64, so that what it accepts is exactly
// what String gives back.
func parseHash(s string) (hash, error) {
	var h hash
	// The base64 decoder skips CR and LF: refuse them, and anything else
	// a PHC string cannot contain, before decoding.
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }); i >= 0 {
		return h, fmt.Errorf("%w: character %q at byte %d", ErrBadHash, s[i:i+1], i)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return h, fmt.Errorf("%w: want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH", ErrBadHash)
	}
	if f[1] != "argon2id" {
		return h, fmt.Errorf("%w: algorithm %q is not argon2id", ErrBadHash, f[1])
	}
	if f[2] != "v="+strconv.Itoa(argon2Version) {
		return h, fmt.Errorf("%w: version %q is not v=19", ErrBadHash, f[2])
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return h, fmt.Errorf("%w: parameters %q are not m=M,t=T,p=P", ErrBadHash, f[3])
	}
	m, err1 := parseParam(ps[0], "m=", 8, maxMemoryKiB)
	t, err2 := parseParam(ps[1], "t=", 1, maxTime)
	p, err3 := parseParam(ps[2], "p=", 1, 255)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return h, err
		}
	}
	if m < 8*p {
		// argon2 needs 8 KiB per lane.
		return h, fmt.Errorf("%w: m=%d is below 8 KiB per lane", ErrBadHash, m)
	}
	h.p = params{memory: m, time: t, threads: uint8(p)}
	var err error
	if h.salt, err = b64.DecodeString(f[4]); err != nil {
		return h, fmt.Errorf("%w: salt is not unpadded base64", ErrBadHash)
	}
	if len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen {
		return h, fmt.Errorf("%w: salt of %d bytes, want %d to %d", ErrBadHash, len(h.salt), minSaltLen, maxSaltLen)
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil {
		return h, fmt.Errorf("%w: hash is not unpadded base64", ErrBadHash)
	}
	if len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
		return h, fmt.Errorf("%w: hash of %d bytes, want %d to %d", ErrBadHash, len(h.key), minKeyLen, maxKeyLen)
	}
	return h, nil
}

// parseParam parses "name=N" with min <= N <= max.
func parseParam(s, name string, min, max uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, fmt.Errorf("%w: parameter %q, want %sN", ErrBadHash, s, name)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || (len(v) > 1 && v[0] == '0') {
		return 0, fmt.Errorf("%w: parameter %q is not a decimal number", ErrBadHash, s)
	}
	if uint32(n) < min || uint32(n) > max {
		return 0, fmt.Errorf("%w: parameter %q out of range %d to %d", ErrBadHash, s, min, max)
	}
	return uint32(n), nil
}
