package auth

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// ACL is a loaded access control list in Mosquitto's acl_file format. It
// is immutable and safe for concurrent use; its checks do not allocate.
// See the package documentation for the grammar and the rules.
type ACL struct {
	anon     ruleSet             // topic lines before any user line
	users    map[string]*ruleSet // topic lines after "user NAME"
	patterns ruleSet             // pattern lines, for every client
}

// A ruleSet keeps deny rules apart, as they are checked before any grant.
type ruleSet struct {
	deny  []rule
	allow []rule
}

func (s *ruleSet) add(r rule) {
	if r.access == accessDeny {
		s.deny = append(s.deny, r)
	} else {
		s.allow = append(s.allow, r)
	}
}

// access is what a rule grants.
type access uint8

const (
	accessDeny  access = 0
	accessRead  access = 1 << 0
	accessWrite access = 1 << 1
	accessBoth         = accessRead | accessWrite
)

func (a access) String() string {
	switch a {
	case accessDeny:
		return "deny"
	case accessRead:
		return "read"
	case accessWrite:
		return "write"
	case accessBoth:
		return "readwrite"
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

var accessByName = map[string]access{
	"deny": accessDeny, "read": accessRead, "write": accessWrite, "readwrite": accessBoth,
}

// A rule is one topic or pattern line.
type rule struct {
	access access
	filter string  // as written
	levels []level // filter split at '/'
}

// levelKind says how a level of a rule's filter matches.
type levelKind uint8

const (
	levelLiteral  levelKind = iota
	levelPlus               // +
	levelHash               // #, always the last level
	levelClientID           // %c, in pattern lines
	levelUsername           // %u, in pattern lines
)

func (k levelKind) String() string {
	switch k {
	case levelLiteral:
		return "literal"
	case levelPlus:
		return "+"
	case levelHash:
		return "#"
	case levelClientID:
		return "%c"
	case levelUsername:
		return "%u"
	}
	return fmt.Sprintf("levelKind(%d)", uint8(k))
}

type level struct {
	kind levelKind
	text string // for levelLiteral
}

// LoadACL reads an ACL file. A malformed line is a *ParseError naming
// path and line.
func LoadACL(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read acl file: %w", err)
	}
	defer f.Close()
	return ParseACL(f, path)
}

// ParseACL reads an ACL file from r; name is used in errors.
func ParseACL(r io.Reader, name string) (*ACL, error) {
	a := &ACL{users: make(map[string]*ruleSet)}
	cur := &a.anon
	err := eachLine(r, name, func(_ int, line string) error {
		keyword, rest := cutField(line)
		switch keyword {
		case "user":
			if rest == "" {
				return fmt.Errorf("%w: user without a name", ErrSyntax)
			}
			if err := checkUsername(rest); err != nil {
				return err
			}
			// A second section for the same user adds to the first,
			// as in Mosquitto.
			if cur = a.users[rest]; cur == nil {
				cur = new(ruleSet)
				a.users[rest] = cur
			}
			return nil
		case "topic", "pattern":
			r, err := parseRule(keyword, rest)
			if err != nil {
				return err
			}
			if keyword == "topic" {
				cur.add(r)
			} else {
				a.patterns.add(r)
			}
			return nil
		}
		return fmt.Errorf("%w: unknown keyword %q, want user, topic or pattern", ErrSyntax, keyword)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// cutField returns the first space-separated field of s and the rest
// without surrounding blanks.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.Trim(s[i:], " \t")
}

// parseRule parses what follows "topic" or "pattern": an optional access
// type, then the filter, which may contain spaces (Mosquitto's grammar:
// with one word it is the filter).
func parseRule(keyword, rest string) (rule, error) {
	first, filter := cutField(rest)
	if first == "" {
		return rule{}, fmt.Errorf("%w: %s without a topic filter", ErrSyntax, keyword)
	}
	acc := accessBoth
	if filter == "" {
		if _, ok := accessByName[first]; ok {
			// Mosquitto would take this as a topic named "read";
			// it is far more likely a forgotten filter.
			return rule{}, fmt.Errorf("%w: %s %s without a topic filter (for a topic named %q write \"%s readwrite %s\")",
				ErrSyntax, keyword, first, first, keyword, first)
		}
		filter = first
	} else {
		var ok bool
		if acc, ok = accessByName[first]; !ok {
			return rule{}, fmt.Errorf("%w: unknown access %q, want read, write, readwrite or deny", ErrSyntax, first)
		}
	}
	levels, err := parseFilter(filter, keyword == "pattern")
	if err != nil {
		return rule{}, err
	}
	return rule{access: acc, filter: filter, levels: levels}, nil
}

// parseFilter checks an MQTT topic filter [MQTT-4.7.1] and splits it into
// levels. In a pattern, a level that is exactly %c or %u is a placeholder;
// %c or %u inside a longer level is refused, since Mosquitto 2 would
// silently take it literally.
func parseFilter(f string, pattern bool) ([]level, error) {
	switch {
	case f == "":
		return nil, fmt.Errorf("%w: empty", ErrBadFilter)
	case len(f) > 65535:
		return nil, fmt.Errorf("%w: longer than 65535 bytes", ErrBadFilter)
	case !utf8.ValidString(f):
		return nil, fmt.Errorf("%w: not UTF-8", ErrBadFilter)
	case strings.IndexByte(f, 0) >= 0:
		return nil, fmt.Errorf("%w: contains U+0000", ErrBadFilter) // [MQTT-1.5.4-2]
	}
	parts := strings.Split(f, "/")
	levels := make([]level, len(parts))
	for i, p := range parts {
		switch {
		case p == "#":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("%w: %q has # before its last level", ErrBadFilter, f) // [MQTT-4.7.1-1]
			}
			levels[i].kind = levelHash
		case p == "+":
			levels[i].kind = levelPlus
		case strings.ContainsAny(p, "+#"):
			return nil, fmt.Errorf("%w: %q has a wildcard inside a level", ErrBadFilter, f) // [MQTT-4.7.1-2]
		case pattern && p == "%c":
			levels[i].kind = levelClientID
		case pattern && p == "%u":
			levels[i].kind = levelUsername
		case pattern && (strings.Contains(p, "%c") || strings.Contains(p, "%u")):
			return nil, fmt.Errorf("%w: %q: %%c and %%u must each be a whole level", ErrBadFilter, f)
		default:
			levels[i] = level{kind: levelLiteral, text: p}
		}
	}
	return levels, nil
}
