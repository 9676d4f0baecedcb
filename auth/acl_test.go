package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// op is the check a test case makes.
type op uint8

const (
	pub  op = iota // CanPublish
	sub            // CanSubscribe
	recv           // CanReceive
)

func (o op) String() string {
	return [...]string{"CanPublish", "CanSubscribe", "CanReceive"}[o]
}

func (o op) check(a *ACL, clientID, username, s string) bool {
	switch o {
	case pub:
		return a.CanPublish(clientID, username, s)
	case sub:
		return a.CanSubscribe(clientID, username, s)
	}
	return a.CanReceive(clientID, username, s)
}

func parseACL(t *testing.T, text string) *ACL {
	t.Helper()
	a, err := ParseACL(strings.NewReader(text), "acl")
	if err != nil {
		t.Fatalf("ParseACL: %v", err)
	}
	return a
}

// aclCase is one check against an ACL.
type aclCase struct {
	client, user string
	op           op
	topic        string
	want         bool
}

func runACLCases(t *testing.T, a *ACL, cases []aclCase) {
	t.Helper()
	for _, c := range cases {
		if got := c.op.check(a, c.client, c.user, c.topic); got != c.want {
			t.Errorf("%v(client %q, user %q, %q) = %v, want %v", c.op, c.client, c.user, c.topic, got, c.want)
		}
	}
}

func TestParseACL_Errors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		err  error
		msg  string
	}{
		{"unknown keyword", "# c\n\nacl read a\n", 3, ErrSyntax, `unknown keyword "acl"`},
		{"capitalised keyword", "Topic read a\n", 1, ErrSyntax, "unknown keyword"},
		{"topic without filter", "topic\n", 1, ErrSyntax, "without a topic filter"},
		{"topic with only spaces", "topic   \t\n", 1, ErrSyntax, "without a topic filter"},
		{"access without filter", "topic read\n", 1, ErrSyntax, `topic named "read"`},
		{"deny without filter", "pattern deny\n", 1, ErrSyntax, "without a topic filter"},
		{"unknown access", "topic rw a/b\n", 1, ErrSyntax, `unknown access "rw"`},
		{"filter with a space but no access", "topic a b\n", 1, ErrSyntax, `unknown access "a"`},
		{"user without name", "topic a\nuser\n", 2, ErrSyntax, "user without a name"},
		{"user with control character", "user al\x7fice\n", 1, ErrBadUsername, "control"},
		{"hash not last", "topic read a/#/b\n", 1, ErrBadFilter, "before its last level"},
		{"plus inside level", "topic read a/b+\n", 1, ErrBadFilter, "inside a level"},
		{"hash inside level", "user u\ntopic write a#\n", 2, ErrBadFilter, "inside a level"},
		{"NUL in filter", "topic read a\x00b\n", 1, ErrBadFilter, "U+0000"},
		{"invalid UTF-8 filter", "topic read a\xffb\n", 1, ErrBadFilter, "UTF-8"},
		{"partial %c", "pattern read devices/dev-%c\n", 1, ErrBadFilter, "whole level"},
		{"partial %u", "pattern read %u-inbox/#\n", 1, ErrBadFilter, "whole level"},
		{"over-long line", "topic read " + strings.Repeat("a", maxLine) + "\n", 1, ErrSyntax, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseACL(strings.NewReader(tc.text), "acl.conf")
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != tc.line || pe.File != "acl.conf" {
				t.Fatalf("error %v is not a ParseError for acl.conf:%d", err, tc.line)
			}
			if prefix := fmt.Sprintf("acl.conf:%d: ", tc.line); !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want %v saying %q", err, tc.err, tc.msg)
			}
		})
	}
}

func TestParseACL_Grammar(t *testing.T) {
	a := parseACL(t, "topic  a/b  \n"+ // default readwrite, extra blanks
		"topic\tread\tr/#\n"+
		"topic write w b/c\n"+ // filter with a space
		"   # indented comment\n"+
		"topic readwrite %c/x\n"+ // %c is literal in topic lines
		"user  alice smith \n"+ // name with a space, trimmed
		"topic deny a/b\n"+
		"pattern read p/%c\n"+
		"user alice smith\n"+ // a second section adds to the first
		"topic read more\n")
	runACLCases(t, a, []aclCase{
		{"c", "", pub, "a/b", true},
		{"c", "", recv, "a/b", true},
		{"c", "", recv, "r/x", true},
		{"c", "", pub, "r/x", false},
		{"c", "", pub, "w b/c", true},
		{"c", "", recv, "w b/c", false},
		{"c", "", pub, "%c/x", true},
		{"c", "", pub, "c/x", false},
		{"c", "alice smith", pub, "a/b", false},
		{"c", "alice smith", recv, "more", true},
		{"c", "alice smith", recv, "p/c", true},
		{"c", "", recv, "p/c", true},
	})
}

func TestLoadACL(t *testing.T) {
	a, err := LoadACL("testdata/acl")
	if err != nil {
		t.Fatal(err)
	}
	runACLCases(t, a, []aclCase{
		// Anonymous: the lines before the first user line, and patterns.
		{"c1", "", recv, "public/news", true},
		{"c1", "", sub, "public/#", true},
		{"c1", "", pub, "public/news", false},
		{"c1", "", recv, "$SYS/broker/uptime", true},
		{"c1", "", recv, "$SYS/broker/load", false},
		{"c1", "", recv, "sensors/t", false},
		{"c1", "", pub, "devices/c1/state", true},
		{"c1", "", recv, "users//inbox/x", false}, // %u never matches an anonymous client
		// alice: her section, not the anonymous one.
		{"c2", "alice", recv, "public/news", false},
		{"c2", "alice", pub, "sensors/t", true},
		{"c2", "alice", sub, "sensors/#", true},
		{"c2", "alice", recv, "sensors/secret/k", false},
		{"c2", "alice", sub, "sensors/secret/#", false},
		{"c2", "alice", recv, "$SYS/broker/load", true},
		{"c2", "alice", recv, "users/alice/inbox/1", true},
		{"c2", "alice", pub, "users/alice/inbox/1", false},
		{"c2", "alice", pub, "users/alice/outbox/1", true},
		{"c2", "alice", recv, "users/bob/inbox/1", false},
		{"c2", "alice", pub, "devices/c2/firmware/signing-key", false},
		{"c2", "alice", pub, "devices/c2/firmware/image", true},
		// bob.
		{"c3", "bob", pub, "sensors/bob/t", true},
		{"c3", "bob", pub, "sensors/bob/t/x", false},
		{"c3", "bob", pub, "sensors/alice/t", false},
		{"c3", "bob", recv, "sensors/alice/status", true},
		{"c3", "bob", sub, "sensors/+/status", true},
		{"c3", "bob", sub, "sensors/#", false},
		// A user without a section has the patterns only.
		{"c4", "carol", recv, "public/news", false},
		{"c4", "carol", recv, "users/carol/inbox/x", true},
	})

	_, err = LoadACL("testdata/acl-bad")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/acl-bad:5: ") {
		t.Errorf("LoadACL(acl-bad) = %v, want an error at line 5", err)
	}
	if _, err := LoadACL("testdata/missing"); err == nil {
		t.Error("LoadACL(missing file) succeeded")
	}
}

func TestACL_EmptyDeniesAll(t *testing.T) {
	for _, text := range []string{"", "\n\n", "# only comments\n", "user alice\n"} {
		a := parseACL(t, text)
		for _, user := range []string{"", "alice"} {
			for _, o := range []op{pub, sub, recv} {
				for _, topic := range []string{"a", "a/b", "#", "$SYS/x"} {
					if o.check(a, "c", user, topic) {
						t.Errorf("ACL %q: %v(%q, %q) = true", text, o, user, topic)
					}
				}
			}
		}
	}
}

func TestACL_DenyTakesPrecedence(t *testing.T) {
	// Whatever the order of the lines, and across sections: a user's
	// topic grant does not override a pattern deny (in Mosquitto 2 it
	// does).
	a := parseACL(t, "topic readwrite a/#\n"+
		"topic deny a/secret\n"+
		"user alice\n"+
		"topic deny a/x/#\n"+
		"topic readwrite a/#\n"+
		"topic readwrite home/#\n"+
		"pattern deny home/%u/private/#\n"+
		"pattern readwrite a/#\n")
	runACLCases(t, a, []aclCase{
		{"c", "", pub, "a/b", true},
		{"c", "", pub, "a/secret", false},
		{"c", "", recv, "a/secret", false},
		{"c", "alice", pub, "a/secret", true}, // the anonymous deny is not hers
		{"c", "alice", pub, "a/x", false},     // a/x/# covers a/x
		{"c", "alice", recv, "a/x/y", false},
		{"c", "alice", recv, "a/y", true},
		{"c", "alice", recv, "home/alice/private/k", false},
		{"c", "alice", recv, "home/bob/private/k", true},
		// A subscription is refused only when a deny covers all of it;
		// otherwise the denied topics are dropped on delivery.
		{"c", "alice", sub, "a/#", true},
		{"c", "alice", sub, "a/x/#", false},
		{"c", "alice", sub, "a/x/+", false},
		{"c", "alice", sub, "a/+", true},
		{"c", "alice", sub, "home/alice/private/#", false},
		{"c", "alice", sub, "home/+/private/#", true},
		{"c", "bob", recv, "a/x/y", true},
	})
}

func TestACL_Access(t *testing.T) {
	a := parseACL(t, "topic read r\ntopic write w\ntopic readwrite rw\ntopic deny d\ntopic d\n")
	runACLCases(t, a, []aclCase{
		{"c", "", pub, "r", false},
		{"c", "", recv, "r", true},
		{"c", "", sub, "r", true},
		{"c", "", pub, "w", true},
		{"c", "", recv, "w", false},
		{"c", "", sub, "w", false},
		{"c", "", pub, "rw", true},
		{"c", "", recv, "rw", true},
		{"c", "", pub, "d", false},
		{"c", "", recv, "d", false},
	})
}

func TestACL_Patterns(t *testing.T) {
	a := parseACL(t, "pattern readwrite devices/%c/#\n"+
		"pattern read users/%u/+\n"+
		"pattern write %u/%c\n"+
		"pattern read all/#\n")
	runACLCases(t, a, []aclCase{
		{"d1", "", pub, "devices/d1/state", true},
		{"d1", "", pub, "devices/d1", true},
		{"d1", "", pub, "devices/d2/state", false},
		{"d1", "", pub, "devices/d1x/state", false},
		{"d1x", "", pub, "devices/d1/state", false},
		{"d1", "", sub, "devices/d1/#", true},
		{"d1", "", sub, "devices/+/#", false},
		{"d1", "", sub, "devices/#", false},
		{"d1", "u", recv, "users/u/x", true},
		{"d1", "u", recv, "users/v/x", false},
		{"d1", "u", sub, "users/u/+", true},
		{"d1", "u", sub, "users/u/#", false},
		{"d1", "u", pub, "u/d1", true},
		{"d1", "u", pub, "d1/u", false},
		{"d1", "", pub, "/d1", false}, // %u is not "" for anonymous clients
		{"d1", "", recv, "users//x", false},
		{"anything", "", sub, "all/#", true},
	})
}

// TestACL_UnsafeSubstitution checks that a client ID or user name with
// '+', '#' or '/' cannot widen its access through %c or %u, and that deny
// patterns still hold for it.
func TestACL_UnsafeSubstitution(t *testing.T) {
	a := parseACL(t, "pattern readwrite devices/%c/#\n"+
		"pattern read users/%u/#\n"+
		"pattern deny secret/%c/key\n"+
		"pattern deny vault/%u\n"+
		"topic readwrite secret/#\n"+
		"topic readwrite vault/#\n"+
		"user a/b\n"+
		"topic readwrite vault/#\n"+
		"user +\n"+
		"topic readwrite vault/#\n")
	runACLCases(t, a, []aclCase{
		// A client ID of + or # would match every device.
		{"+", "", sub, "devices/+/#", false},
		{"+", "", sub, "devices/+/state", false},
		{"#", "", sub, "devices/#", false},
		{"#", "", sub, "devices/#/x", false},
		{"+", "", recv, "devices/d1/state", false},
		{"+", "", pub, "devices/+/state", false}, // not a topic name
		{"a+b", "", recv, "devices/a+b/x", false},
		// A client ID with / would reach into another client's tree.
		{"d1/sub", "", recv, "devices/d1/sub/x", false},
		{"d1/sub", "", recv, "devices/d1/x", false},
		// The same for user names.
		{"c", "+", sub, "users/+/#", false},
		{"c", "#", sub, "users/#", false},
		{"c", "a/b", recv, "users/a/b/x", false},
		{"c", "+", recv, "users/x/y", false},
		// An empty client ID matches nothing.
		{"", "", recv, "devices//x", false},
		// A deny pattern with an unsafe value acts as +: it denies what
		// it would deny for any well-formed value.
		{"x+y", "", pub, "secret/x/key", false},
		{"a/b", "", pub, "secret/zzz/key", false},
		{"a/b", "", pub, "secret/zzz/other", true},
		{"a/b", "", sub, "secret/+/key", false},
		{"ok", "", pub, "secret/other/key", true},
		{"ok", "", pub, "secret/ok/key", false},
		{"c", "", recv, "vault/anyone", false}, // anonymous: %u acts as + in a deny
		{"c", "a/b", pub, "vault/x", false},
		{"c", "+", pub, "vault/x", false},
		{"c", "+", pub, "vault/x/y", true},
	})
}

func TestACL_DollarTopics(t *testing.T) {
	a := parseACL(t, "topic read #\ntopic read +/broker/#\ntopic read $SYS/broker/uptime\n"+
		"pattern read %c/#\npattern read %u/#\n")
	runACLCases(t, a, []aclCase{
		{"c", "", recv, "a/b", true},
		{"c", "", recv, "$SYS/broker/load", false},
		{"c", "", recv, "$SYS/broker/uptime", true},
		{"c", "", sub, "$SYS/broker/uptime", true},
		{"c", "", sub, "$SYS/#", false},
		{"c", "", sub, "#", true}, // # does not match $ topics [MQTT-4.7.2-1]
		{"$SYS", "", recv, "$SYS/broker/load", false},
		{"$SYS", "", sub, "$SYS/#", false},
		{"c", "$SYS", recv, "$SYS/broker/load", false},
	})
}

func TestACL_Subscribe(t *testing.T) {
	a := parseACL(t, "topic read a/#\ntopic read b/+\ntopic read c/+/d\ntopic read e\ntopic write w/#\n"+
		"topic read $share/x/y\n")
	runACLCases(t, a, []aclCase{
		{"c", "", sub, "a/#", true},
		{"c", "", sub, "a", true},
		{"c", "", sub, "a/b/+", true},
		{"c", "", sub, "a/+/#", true},
		{"c", "", sub, "#", false},
		{"c", "", sub, "+/b", false},
		{"c", "", sub, "+", false},
		{"c", "", sub, "b/x", true},
		{"c", "", sub, "b/+", true},
		{"c", "", sub, "b/#", false},
		{"c", "", sub, "b", false},
		{"c", "", sub, "b/x/y", false},
		{"c", "", sub, "c/+/d", true},
		{"c", "", sub, "c/x/d", true},
		{"c", "", sub, "c/#", false},
		{"c", "", sub, "c/+/+", false},
		{"c", "", sub, "e", true},
		{"c", "", sub, "e/#", false},
		{"c", "", sub, "e/+", false},
		{"c", "", sub, "w/#", false},
		// Shared subscriptions: the filter after the group is checked.
		{"c", "", sub, "$share/g/a/#", true},
		{"c", "", sub, "$share/g/b/x", true},
		{"c", "", sub, "$share/g/#", false},
		{"c", "", sub, "$share/g/y", false},
		{"c", "", sub, "$share//a/b", false},
		{"c", "", sub, "$share/g+/a/b", false},
		{"c", "", sub, "$share/g", false},
		{"c", "", sub, "$share/g/", false},
		// Invalid filters are refused.
		{"c", "", sub, "", false},
		{"c", "", sub, "a/#/b", false},
		{"c", "", sub, "a/b#", false},
		{"c", "", sub, "a/+b", false},
		// Topic names with wildcards are not topic names.
		{"c", "", recv, "a/+", false},
		{"c", "", recv, "a/#", false},
		{"c", "", recv, "", false},
		{"c", "", pub, "w/#", false},
	})
}

func TestValidFilter(t *testing.T) {
	for _, f := range []string{"", "a", "a/b", "#", "+", "a/+/b", "/", "//", "a/#", "+/#", "a+", "#/a", "a/#/", "a/b#", "++", "a/+#"} {
		_, err := parseFilter(f, false)
		if got, want := validFilter(f), err == nil; got != want {
			t.Errorf("validFilter(%q) = %v, parseFilter says %v", f, got, want)
		}
	}
}

func TestACL_ChecksDoNotAllocate(t *testing.T) {
	a := parseACL(t, "pattern readwrite devices/%c/#\nuser alice\ntopic read a/+/c\ntopic deny a/b/d\n")
	n := testing.AllocsPerRun(100, func() {
		a.CanPublish("d1", "alice", "devices/d1/x")
		a.CanReceive("d1", "alice", "a/b/c")
		a.CanSubscribe("d1", "alice", "$share/g/a/+/c")
	})
	if n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

func BenchmarkACL_CanReceive(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("pattern readwrite devices/%c/#\npattern read users/%u/#\n")
	for i := range 20 {
		fmt.Fprintf(&sb, "user u%d\ntopic read sensors/%d/#\ntopic deny sensors/%d/secret\n", i, i, i)
	}
	a, err := ParseACL(strings.NewReader(sb.String()), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.CanReceive("dev-1", "u7", "sensors/7/room/temperature")
	}
}
