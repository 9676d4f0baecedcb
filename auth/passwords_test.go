package auth

import (
	"context"
	"errors"
	"fmt"
	"gatemq/internal/testkit"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cheap are parameters that make test hashes fast.
var cheap = params{memory: 64, time: 1, threads: 1}

// fixed hashes made once with cheap parameters.
var (
	hashSecret = mustHash("secret", cheap)
	hashHunter = mustHash("hunter2", cheap)
)

func mustHash(pw string, p params) string {
	h, err := newHash([]byte(pw), p)
	if err != nil {
		panic(err)
	}
	return h.String()
}

func parsePasswords(t *testing.T, text string) *Passwords {
	t.Helper()
	p, err := ParsePasswords(strings.NewReader(text), "pw")
	if err != nil {
		t.Fatalf("ParsePasswords: %v", err)
	}
	return p
}

func TestParsePasswords_Valid(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		users map[string]string // user: password
	}{
		{"empty file", "", nil},
		{"comments and blank lines", "# users\n\n   \n\t# indented comment\n", nil},
		{"one user", "alice:" + hashSecret + "\n", map[string]string{"alice": "secret"}},
		{"no final newline", "alice:" + hashSecret, map[string]string{"alice": "secret"}},
		{"CRLF and trailing blanks", "alice:" + hashSecret + " \r\nbob:" + hashHunter + "\r\n",
			map[string]string{"alice": "secret", "bob": "hunter2"}},
		{"names with spaces, unicode and @", "dev 42@site:" + hashSecret + "\nJürgen:" + hashHunter + "\n",
			map[string]string{"dev 42@site": "secret", "Jürgen": "hunter2"}},
		{"same password, different salts", "a:" + mustHash("x", cheap) + "\nb:" + mustHash("x", cheap) + "\n",
			map[string]string{"a": "x", "b": "x"}},
		{"default parameters", "alice:" + mustHash("secret", defaultParams) + "\n", map[string]string{"alice": "secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parsePasswords(t, tc.text)
			if p.Len() != len(tc.users) {
				t.Errorf("Len = %d, want %d", p.Len(), len(tc.users))
			}
			for u, pw := range tc.users {
				if !p.Check(u, []byte(pw)) {
					t.Errorf("Check(%q, %q) = false", u, pw)
				}
				if p.Check(u, []byte(pw+"x")) {
					t.Errorf("Check(%q, wrong) = true", u)
				}
				if p.Check(u, nil) || p.Check(u, []byte{}) {
					t.Errorf("Check(%q, empty) = true", u)
				}
			}
		})
	}
}

func TestParsePasswords_Errors(t *testing.T) {
	h := hashSecret
	f := strings.Split(h, "$") // "", argon2id, v=19, m=..., salt, key
	salt, key := f[4], f[5]
	tests := []struct {
		name string
		text string
		line int
		err  error
		msg  string
	}{
		{"no colon", "# c\nalice\n", 2, ErrSyntax, "want USER:"},
		{"blank password line", "alice:\n", 1, ErrBadHash, "no hash"},
		{"blank after trailing spaces", "alice:   \n", 1, ErrBadHash, "no hash"},
		{"empty user", ":" + h + "\n", 1, ErrBadUsername, "empty"},
		{"leading space in user", "\n alice:" + h + "\n", 2, ErrBadUsername, "white space"},
		{"control character in user", "al\x01ice:" + h, 1, ErrBadUsername, "control"},
		{"invalid UTF-8 user", "al\xffice:" + h, 1, ErrBadUsername, "UTF-8"},
		{"plain text password", "alice:secret\n", 1, ErrBadHash, "want $argon2id$"},
		{"mosquitto sha512", "alice:$6$c2FsdA==$aGFzaA==\n", 1, ErrBadHash, ""},
		{"mosquitto pbkdf2", "alice:$7$101$c2FsdA==$aGFzaA==\n", 1, ErrBadHash, ""},
		{"argon2i", "alice:$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, 1, ErrBadHash, "not argon2id"},
		{"version 16", "alice:$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, 1, ErrBadHash, "v=19"},
		{"no version", "alice:$argon2id$m=64,t=1,p=1$" + salt + "$" + key, 1, ErrBadHash, ""},
		{"params out of order", "alice:$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, 1, ErrBadHash, "want m="},
		{"t=0", "alice:$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, 1, ErrBadHash, "out of range"},
		{"p=0", "alice:$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, 1, ErrBadHash, "out of range"},
		{"p=256", "alice:$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key, 1, ErrBadHash, "out of range"},
		{"m below 8 KiB per lane", "alice:$argon2id$v=19$m=16,t=1,p=4$" + salt + "$" + key, 1, ErrBadHash, "per lane"},
		{"m over 1 GiB", "alice:$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key, 1, ErrBadHash, "out of range"},
		{"t over 100", "alice:$argon2id$v=19$m=64,t=101,p=1$" + salt + "$" + key, 1, ErrBadHash, "out of range"},
		{"leading zero", "alice:$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, 1, ErrBadHash, "decimal"},
		{"sign", "alice:$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key, 1, ErrBadHash, "decimal"},
		{"extra parameter", "alice:$argon2id$v=19$m=64,t=1,p=1,keyid=x$" + salt + "$" + key, 1, ErrBadHash, ""},
		{"padded base64", "alice:$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, 1, ErrBadHash, "base64"},
		{"short salt", "alice:$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, 1, ErrBadHash, "salt of 4 bytes"},
		{"short hash", "alice:$argon2id$v=19$m=64,t=1,p=1$" + salt + "$aGFzaA", 1, ErrBadHash, "hash of 4 bytes"},
		{"empty hash", "alice:$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", 1, ErrBadHash, "hash of 0 bytes"},
		{"extra field", "alice:" + h + "$x", 1, ErrBadHash, ""},
		{"CR inside the hash", "alice:" + h[:len(h)-2] + "\r" + h[len(h)-2:] + "\n", 1, ErrBadHash, "character"},
		{"space inside the hash", "alice:" + h[:len(h)-2] + " " + h[len(h)-2:] + "\n", 1, ErrBadHash, "character"},
		{"colon in user name", "ali:ce:" + h, 1, ErrBadHash, ""},
		{"duplicate user", "alice:" + h + "\n# again\nalice:" + hashHunter + "\n", 3, ErrDuplicateUser, "already on line 1"},
		{"over-long line", "alice:" + strings.Repeat("x", maxLine+1), 1, ErrSyntax, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePasswords(strings.NewReader(tc.text), "users.pw")
			if err == nil {
				t.Fatalf("parsed %d users, want an error", p.Len())
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != tc.line || pe.File != "users.pw" {
				t.Fatalf("error %q is not a ParseError for users.pw:%d", err, tc.line)
			}
			if prefix := fmt.Sprintf("users.pw:%d: ", tc.line); !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %q is not %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestLoadPasswords(t *testing.T) {
	p, err := LoadPasswords("testdata/passwords")
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 2 || !p.Check("alice", []byte("secret")) || !p.Check("bob", []byte("hunter2")) {
		t.Errorf("testdata/passwords: Len %d, alice or bob rejected", p.Len())
	}
	_, err = LoadPasswords("testdata/passwords-bad")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/passwords-bad:4: ") {
		t.Errorf("LoadPasswords(passwords-bad) = %v, want an error at line 4", err)
	}
	if _, err := LoadPasswords("testdata/missing"); err == nil {
		t.Error("LoadPasswords(missing file) succeeded")
	}
}

func TestHashPassword(t *testing.T) {
	s, err := HashPassword([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(s, want) {
		t.Errorf("HashPassword = %q, want prefix %q", s, want)
	}
	h, err := parseHash(s)
	if err != nil {
		t.Fatalf("parseHash(HashPassword()): %v", err)
	}
	if len(h.salt) != saltLen || len(h.key) != keyLen || h.String() != s {
		t.Errorf("salt %d bytes, key %d bytes, String %q", len(h.salt), len(h.key), h.String())
	}
	p := parsePasswords(t, "u:"+s)
	if !p.Check("u", []byte("correct horse")) || p.Check("u", []byte("correct horse ")) {
		t.Error("Check disagrees with HashPassword")
	}
	if s2, _ := HashPassword([]byte("correct horse")); s2 == s {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, pw := range [][]byte{nil, {}} {
		if _, err := HashPassword(pw); !errors.Is(err, ErrEmptyPassword) {
			t.Errorf("HashPassword(%q) error = %v, want ErrEmptyPassword", pw, err)
		}
	}
}

// countDerive replaces p's key derivation with one that counts calls and
// records the parameters used.
func countDerive(p *Passwords) (calls *atomic.Int32, used *[]params) {
	calls = new(atomic.Int32)
	used = new([]params)
	var mu sync.Mutex
	p.derive = func(pw, salt []byte, pp params, n uint32) []byte {
		calls.Add(1)
		mu.Lock()
		*used = append(*used, pp)
		mu.Unlock()
		return deriveKey(pw, salt, pp, n)
	}
	return calls, used
}

// TestPasswords_UnknownUserCostsAHash checks, by counting argon2 runs
// rather than by timing, that an unknown user costs what a known one does.
func TestPasswords_UnknownUserCostsAHash(t *testing.T) {
	other := params{memory: 72, time: 1, threads: 1}
	p := parsePasswords(t, "alice:"+hashSecret+"\nbob:"+mustHash("x", cheap)+"\ncarol:"+mustHash("y", other)+"\n")
	calls, used := countDerive(p)
	tests := []struct {
		user, pw string
		want     bool
		hashes   int32
	}{
		{"alice", "secret", true, 1},
		{"alice", "wrong", false, 1},
		{"mallory", "secret", false, 1},
		{"", "secret", false, 1},
		{"alice", "", false, 0},
		{"mallory", "", false, 0},
	}
	for _, tc := range tests {
		calls.Store(0)
		*used = nil
		if got := p.Check(tc.user, []byte(tc.pw)); got != tc.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tc.user, tc.pw, got, tc.want)
		}
		if n := calls.Load(); n != tc.hashes {
			t.Errorf("Check(%q, %q) computed %d hashes, want %d", tc.user, tc.pw, n, tc.hashes)
		}
		if tc.user == "mallory" && tc.hashes == 1 && (*used)[0] != cheap {
			t.Errorf("unknown user hashed with %+v, want the most common parameters %+v", (*used)[0], cheap)
		}
	}
	// The dummy never matches, whatever the password.
	if p.Check("mallory", []byte{0}) {
		t.Error("unknown user accepted")
	}
}

func TestPasswords_DummyParamsOfEmptyFile(t *testing.T) {
	p := parsePasswords(t, "")
	if p.dummy.p != defaultParams || len(p.dummy.salt) != saltLen || len(p.dummy.key) != keyLen {
		t.Errorf("dummy of an empty file: %+v, salt %d, key %d", p.dummy.p, len(p.dummy.salt), len(p.dummy.key))
	}
}

// TestPasswords_ConcurrencyBound starts many checks at once and checks
// that no more than the limit hash at the same time.
func TestPasswords_ConcurrencyBound(t *testing.T) {
	p := parsePasswords(t, "alice:"+hashSecret)
	const limit, clients = 3, 40
	p.sem = make(chan struct{}, limit)
	var cur, peak atomic.Int32
	release := make(chan struct{})
	p.derive = func(pw, salt []byte, pp params, n uint32) []byte {
		c := cur.Add(1)
		for {
			old := peak.Load()
			if c <= old || peak.CompareAndSwap(old, c) {
				break
			}
		}
		<-release
		cur.Add(-1)
		return deriveKey(pw, salt, pp, n)
	}
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for i := range clients {
		wg.Go(func() {
			user := "alice"
			if i%2 == 1 {
				user = "nobody"
			}
			if p.Check(user, []byte("secret")) {
				accepted.Add(1)
			}
		})
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := cur.Load(); n != limit {
			return fmt.Errorf("%d hashing, want %d", n, limit)
		}
		return nil
	})

	// With the slots full, a check whose context ends gives up without
	// hashing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := p.CheckContext(ctx, "alice", []byte("secret")); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("CheckContext(cancelled) = %v, %v, want false, context.Canceled", ok, err)
	}

	close(release)
	wg.Wait()
	if n := peak.Load(); n != limit {
		t.Errorf("peak concurrent hashes = %d, want %d", n, limit)
	}
	if n := accepted.Load(); n != clients/2 {
		t.Errorf("accepted %d, want %d", n, clients/2)
	}
}

func TestHashLimit(t *testing.T) {
	p := parsePasswords(t, "")
	if n := cap(p.sem); n < 1 || n != hashLimit() {
		t.Errorf("semaphore of %d, want hashLimit() = %d", n, hashLimit())
	}
}
