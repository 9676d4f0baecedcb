package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Passwords is a loaded password file: user names and their argon2id
// hashes. It is immutable and safe for concurrent use. To reload a file,
// load a new Passwords and swap the pointer (an atomic.Pointer in the
// broker); checks in flight finish against the old one.
type Passwords struct {
	users map[string]hash

	// dummy is checked for unknown users, with the parameters most lines
	// use, so that an unknown name costs what a known one does.
	dummy hash

	// sem bounds concurrent argon2 computations: each holds the m KiB
	// of its parameters, so a connect storm needs at most cap(sem) × m.
	sem chan struct{}

	// derive computes the key; tests replace it to count computations.
	derive func(password, salt []byte, p params, n uint32) []byte
}

// LoadPasswords reads a password file. See the package documentation for
// the format. A malformed line is a *ParseError naming path and line.
func LoadPasswords(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	defer f.Close()
	return ParsePasswords(f, path)
}

// ParsePasswords reads a password file from r; name is used in errors.
func ParsePasswords(r io.Reader, name string) (*Passwords, error) {
	users, err := parsePasswordLines(r, name)
	if err != nil {
		return nil, err
	}
	p := &Passwords{
		users:  users,
		sem:    make(chan struct{}, hashLimit()),
		derive: deriveKey,
	}
	p.dummy = dummyHash(users)
	return p, nil
}

// hashLimit is how many argon2 computations may run at once: one per CPU
// the Go scheduler uses, as more would only queue for a CPU while holding
// their memory.
func hashLimit() int {
	return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0)))
}

// parsePasswordLines parses the lines of a password file into a map from
// user name to hash.
func parsePasswordLines(r io.Reader, name string) (map[string]hash, error) {
	users := make(map[string]hash)
	lineOf := make(map[string]int)
	err := eachLine(r, name, func(n int, line string) error {
		user, phc, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("%w: want USER:$argon2id$...", ErrSyntax)
		}
		if err := checkUsername(user); err != nil {
			return err
		}
		if phc == "" {
			// Never a user without a password.
			return fmt.Errorf("%w: user %q has no hash", ErrBadHash, user)
		}
		h, err := parseHash(phc)
		if err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		if first, dup := lineOf[user]; dup {
			return fmt.Errorf("%w: %q is already on line %d", ErrDuplicateUser, user, first)
		}
		users[user], lineOf[user] = h, n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// dummyHash returns a hash that no password matches, with the parameters
// most users have (the defaults for an empty file), so that checking it
// costs what checking a real user's hash costs.
func dummyHash(users map[string]hash) hash {
	type shape struct {
		p              params
		saltLen, keyLn int
	}
	count := make(map[shape]int)
	best, bestN := shape{defaultParams, saltLen, keyLen}, 0
	for _, h := range users {
		s := shape{h.p, len(h.salt), len(h.key)}
		count[s]++
		if n := count[s]; n > bestN || (n == bestN && less(s.p, best.p)) {
			best, bestN = s, n
		}
	}
	d := hash{p: best.p, salt: make([]byte, best.saltLen), key: make([]byte, best.keyLn)}
	rand.Read(d.salt)
	rand.Read(d.key)
	return d
}

// less orders parameters so that ties in dummyHash are broken the same
// way whatever the map order.
func less(a, b params) bool {
	if a.memory != b.memory {
		return a.memory < b.memory
	}
	if a.time != b.time {
		return a.time < b.time
	}
	return a.threads < b.threads
}

// Len returns the number of users.
func (p *Passwords) Len() int { return len(p.users) }

// Check reports whether password is user's password. It is
// CheckContext without a deadline.
func (p *Passwords) Check(user string, password []byte) bool {
	ok, _ := p.CheckContext(context.Background(), user, password)
	return ok
}

// CheckContext reports whether password is user's password. An empty
// password is always wrong and costs nothing. Otherwise it computes one
// argon2id hash, also for a user that does not exist, so that the time
// taken does not tell whether a user name exists; the comparison is
// constant-time. No result is cached.
//
// It blocks while as many hashes as there are CPUs are being computed;
// if ctx ends first it returns false and ctx.Err(). Use the CONNECT
// deadline. It is safe for concurrent use and does not keep password.
func (p *Passwords) CheckContext(ctx context.Context, user string, password []byte) (bool, error) {
	if len(password) == 0 {
		return false, nil
	}
	h, known := p.users[user]
	if !known {
		h = p.dummy
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	key := p.derive(password, h.salt, h.p, uint32(len(h.key)))
	<-p.sem
	match := subtle.ConstantTimeCompare(key, h.key) == 1
	return match && known, nil
}
