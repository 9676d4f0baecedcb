package auth

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func FuzzLoadPasswords(f *testing.F) {
	for _, name := range []string{"testdata/passwords", "testdata/passwords-bad"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "# c\n\n", "alice:" + hashSecret + "\n", "alice:\n", "alice\n", ":" + hashSecret,
		"a:" + hashSecret + "\r\nb:" + hashHunter, "a:" + hashSecret + "\na:" + hashSecret,
		"a:$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"a:$argon2id$v=19$m=0,t=0,p=0$$", "a:$6$x$y", " a:" + hashSecret,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePasswords(bytes.NewReader(data), "fuzz")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q is not a ParseError with a line", err)
			}
			return
		}
		var calls atomic.Int32
		p.derive = func(pw, salt []byte, pp params, n uint32) []byte {
			calls.Add(1)
			return deriveKey(pw, salt, pp, n)
		}
		for u, h := range p.users {
			if checkUsername(u) != nil {
				t.Fatalf("user %q accepted", u)
			}
			if len(h.salt) < minSaltLen || len(h.key) < minKeyLen || h.p.time < 1 || h.p.threads < 1 {
				t.Fatalf("user %q has a degenerate hash %+v", u, h)
			}
			// Whatever parses is in canonical form: it re-encodes to the
			// text of its line.
			if !bytes.Contains(data, []byte(u+":"+h.String())) {
				t.Fatalf("user %q: %s is not in the input", u, h)
			}
			if p.Check(u, nil) || p.Check(u, []byte{}) {
				t.Fatalf("user %q accepts an empty password", u)
			}
			if h.p.memory <= 1024 && h.p.time <= 4 {
				p.Check(u, []byte("x"))
			}
		}
		if calls.Load() > int32(len(p.users)) {
			t.Fatalf("empty passwords were hashed")
		}
	})
}

func FuzzLoadACL(f *testing.F) {
	for _, name := range []string{"testdata/acl", "testdata/acl-bad"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "dev1", "alice", "sensors/a/b")
	}
	for _, s := range []string{
		"", "topic #\n", "topic read\n", "user\n", "pattern readwrite devices/%c/#\n",
		"pattern deny %u/%c\ntopic a/+/b\n", "user a b\ntopic write $SYS/#\n", "topic read a b c\n",
		"topic read a/#/b\n", "pattern read x%cy\n",
	} {
		f.Add([]byte(s), "+", "#", "a/b")
	}
	f.Fuzz(func(t *testing.T, data []byte, clientID, username, topic string) {
		a, err := ParseACL(bytes.NewReader(data), "fuzz")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %q is not a ParseError with a line", err)
			}
			return
		}
		// What parses re-serialises to a file that parses the same.
		text := formatACL(a)
		b, err := ParseACL(strings.NewReader(text), "again")
		if err != nil {
			t.Fatalf("re-serialised ACL does not parse: %v\n%s", err, text)
		}
		if again := formatACL(b); again != text {
			t.Fatalf("re-serialised ACL differs:\n%s\nthen\n%s", text, again)
		}
		// The checks never panic, and agree with each other.
		pub := a.CanPublish(clientID, username, topic)
		recv := a.CanReceive(clientID, username, topic)
		subs := a.CanSubscribe(clientID, username, topic)
		if validTopicName(topic) && !strings.HasPrefix(topic, "$share/") && recv != subs {
			// A topic name is a filter matching only itself.
			t.Fatalf("CanReceive %v but CanSubscribe %v for %q", recv, subs, topic)
		}
		if !validTopicName(topic) && (pub || recv) {
			t.Fatalf("invalid topic name %q allowed", topic)
		}
		if len(a.anon.allow)+len(a.patterns.allow)+len(a.users) == 0 && (pub || recv || subs) {
			t.Fatalf("ACL without grants allowed %q", topic)
		}
	})
}

// formatACL writes a in the ACL file format: anonymous lines, patterns,
// then each user's section, deny lines first.
func formatACL(a *ACL) string {
	var sb strings.Builder
	writeRules := func(keyword string, rs *ruleSet) {
		for _, r := range slices.Concat(rs.deny, rs.allow) {
			sb.WriteString(keyword + " " + r.access.String() + " " + r.filter + "\n")
		}
	}
	writeRules("topic", &a.anon)
	writeRules("pattern", &a.patterns)
	names := make([]string, 0, len(a.users))
	for u := range a.users {
		names = append(names, u)
	}
	slices.Sort(names)
	for _, u := range names {
		sb.WriteString("user " + u + "\n")
		writeRules("topic", a.users[u])
	}
	return sb.String()
}
