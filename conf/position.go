package conf

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// The toml package reports lines for syntax errors only: its MetaData has
// the keys in document order (Keys) but keeps their positions private, and
// keyed without array indices, so every listener.address would share the
// line of the last one. keyLines recovers the line of each key by scanning
// the document a second time, after toml has accepted it.

// keyLines maps keys with array indices ("listener[1].address") to the line,
// starting at 1, where they are written.
type keyLines map[string]int

// scanKeyLines returns the line of every key, table header and array-of-
// tables element in src, a document toml has parsed. keys is md.Keys(): when
// the scan does not find the same keys in the same order, it returns nil,
// and errors go without lines rather than with wrong ones.
func scanKeyLines(src string, keys []toml.Key) keyLines {
	s := keyScanner{
		src:     src,
		line:    1,
		lines:   make(keyLines),
		arrays:  make(map[string]int),
		current: make(map[string]int),
	}
	// Like toml, skip a byte-order mark; it does not change line numbers.
	for _, bom := range []string{"\xff\xfe", "\xfe\xff", "\xef\xbb\xbf"} {
		if strings.HasPrefix(src, bom) {
			s.i = len(bom)
			break
		}
	}
	if !s.document() || len(s.order) != len(keys) {
		return nil
	}
	for i, k := range keys {
		if s.order[i] != k.String() {
			return nil
		}
	}
	return s.lines
}

// lineOf returns the line of key; of its first sub-key if key is an
// implicit table ([a.b] defines a without naming it); else of its nearest
// parent, for keys the file leaves out; else 0.
func (kl keyLines) lineOf(key string) int {
	for key != "" {
		if n, ok := kl[key]; ok {
			return n
		}
		first := 0
		for k, n := range kl {
			if (strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[")) && (first == 0 || n < first) {
				first = n
			}
		}
		if first > 0 {
			return first
		}
		key = parentKey(key)
	}
	return 0
}

// parentKey strips the last part from a key: "a[1].b" → "a[1]" → "a" → "".
// Quoted parts may contain dots and brackets, so it scans from the start.
func parentKey(key string) string {
	last, inQuote := 0, false
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			last = i
		}
	}
	return key[:last]
}

// maxScanDepth is how deeply arrays and inline tables may nest for the scan.
const maxScanDepth = 32

// keyScanner walks a TOML document that is known to be valid, recording
// where each key is. It returns false, never panics, on anything it does not
// understand.
type keyScanner struct {
	src  string
	i    int // offset of the next byte
	line int // line of src[i]

	lines keyLines
	order []string // keys without indices, as MetaData.Keys has them

	depth int // nesting of arrays and inline tables

	ctx  string   // key of the current table, with indices
	ctxU []string // key of the current table, without indices

	arrays  map[string]int // array of tables, with indices → elements so far
	current map[string]int // array of tables, without indices → current element
}

func (s *keyScanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *keyScanner) record(key string, unindexed []string, line int) {
	if _, ok := s.lines[key]; !ok {
		s.lines[key] = line
	}
	s.order = append(s.order, toml.Key(unindexed).String())
}

// document scans the top level: comments, headers and key/value pairs.
func (s *keyScanner) document() bool {
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			s.i++
			s.line++
		case '#':
			s.comment()
		case '[':
			if !s.header() {
				return false
			}
		default:
			line := s.line
			parts, ok := s.keyValue()
			if !ok {
				return false
			}
			key := s.ctx
			for _, p := range parts {
				key = joinKey(key, p)
			}
			u := append(append([]string(nil), s.ctxU...), parts...)
			s.record(key, u, line)
			if !s.value(key, u) {
				return false
			}
		}
	}
	return true
}

func (s *keyScanner) comment() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

// header scans [table] or [[array.of.tables]].
func (s *keyScanner) header() bool {
	line := s.line
	array := s.peek(1) == '['
	if array {
		s.i += 2
	} else {
		s.i++
	}
	parts, ok := s.key()
	if !ok || len(parts) == 0 {
		return false
	}
	s.spaces()
	if s.peek(0) != ']' || (array && s.peek(1) != ']') {
		return false
	}
	s.i++
	if array {
		s.i++
	}

	// Resolve the parents, which may be elements of arrays of tables.
	key := ""
	for j, p := range parts[:len(parts)-1] {
		key = joinKey(key, p)
		if n, ok := s.current[toml.Key(parts[:j+1]).String()]; ok {
			key += "[" + strconv.Itoa(n) + "]"
		}
	}
	key = joinKey(key, parts[len(parts)-1])
	u := toml.Key(parts).String()
	if array {
		n := s.arrays[key]
		s.arrays[key] = n + 1
		// A new element: arrays nested in the old one start again.
		for k := range s.current {
			if strings.HasPrefix(k, u+".") {
				delete(s.current, k)
			}
		}
		s.current[u] = n
		if _, ok := s.lines[key]; !ok {
			s.lines[key] = line
		}
		key += "[" + strconv.Itoa(n) + "]"
	} else if n, ok := s.current[u]; ok {
		key += "[" + strconv.Itoa(n) + "]"
	}
	s.ctx, s.ctxU = key, parts
	s.record(key, parts, line)
	return true
}

// keyValue scans `key =` and the spaces after it.
func (s *keyScanner) keyValue() ([]string, bool) {
	parts, ok := s.key()
	if !ok || len(parts) == 0 {
		return nil, false
	}
	s.spaces()
	if s.peek(0) != '=' {
		return nil, false
	}
	s.i++
	s.spaces()
	return parts, true
}

// key scans a dotted key, returning its parts unquoted.
func (s *keyScanner) key() ([]string, bool) {
	var parts []string
	for {
		s.spaces()
		part, ok := s.keyPart()
		if !ok {
			return nil, false
		}
		parts = append(parts, part)
		s.spaces()
		if s.peek(0) != '.' {
			return parts, true
		}
		s.i++
	}
}

func (s *keyScanner) keyPart() (string, bool) {
	switch s.peek(0) {
	case '"':
		return s.basicString()
	case '\'':
		start := s.i + 1
		end := strings.IndexAny(s.src[start:], "'\n")
		if end < 0 || s.src[start+end] != '\'' {
			return "", false
		}
		s.i = start + end + 1
		return s.src[start : start+end], true
	}
	start := s.i
	for s.i < len(s.src) && isBareKeyChar(s.src[s.i]) {
		s.i++
	}
	return s.src[start:s.i], s.i > start
}

func isBareKeyChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (s *keyScanner) spaces() {
	for c := s.peek(0); c == ' ' || c == '\t'; c = s.peek(0) {
		s.i++
	}
}

// blanks skips spaces, newlines and comments, as allowed inside arrays and
// (in TOML 1.1) inline tables.
func (s *keyScanner) blanks() {
	for {
		switch s.peek(0) {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			s.i++
			s.line++
		case '#':
			s.comment()
		default:
			return
		}
	}
}

// value scans the value of key (unindexed: u), recording the keys of inline
// tables in it.
func (s *keyScanner) value(key string, u []string) bool {
	switch s.peek(0) {
	case '[', '{':
		// Keys of nested values grow with the depth; a configuration
		// nests two or three levels, so give up on absurd documents
		// rather than spend quadratic time on them.
		if s.depth >= maxScanDepth {
			return false
		}
		s.depth++
		defer func() { s.depth-- }()
	}
	switch s.peek(0) {
	case '"':
		if strings.HasPrefix(s.src[s.i:], `"""`) {
			return s.multiline(`"""`, true)
		}
		_, ok := s.basicString()
		return ok
	case '\'':
		if strings.HasPrefix(s.src[s.i:], `'''`) {
			return s.multiline(`'''`, false)
		}
		_, ok := s.keyPart()
		return ok
	case '[':
		return s.array(key, u)
	case '{':
		return s.inlineTable(key, u)
	}
	// Numbers, booleans, dates and times, which may contain a space.
	start := s.i
	for s.i < len(s.src) && !strings.ContainsRune(",]}#\r\n", rune(s.src[s.i])) {
		s.i++
	}
	return s.i > start
}

func (s *keyScanner) array(key string, u []string) bool {
	s.i++ // [
	for n := 0; ; n++ {
		s.blanks()
		if s.peek(0) == ']' {
			s.i++
			return true
		}
		if !s.value(key+"["+strconv.Itoa(n)+"]", u) {
			return false
		}
		s.blanks()
		switch s.peek(0) {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *keyScanner) inlineTable(key string, u []string) bool {
	s.i++ // {
	for {
		s.blanks()
		if s.peek(0) == '}' {
			s.i++
			return true
		}
		line := s.line
		parts, ok := s.keyValue()
		if !ok {
			return false
		}
		k := key
		for _, p := range parts {
			k = joinKey(k, p)
		}
		ku := append(append([]string(nil), u...), parts...)
		s.record(k, ku, line)
		if !s.value(k, ku) {
			return false
		}
		s.blanks()
		switch s.peek(0) {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// multiline scans a multi-line string delimited by delim.
func (s *keyScanner) multiline(delim string, escapes bool) bool {
	s.i += len(delim)
	for s.i < len(s.src) {
		switch c := s.src[s.i]; {
		case escapes && c == '\\':
			s.i++
			if s.peek(0) == '\n' {
				s.line++
			}
			s.i++
		case c == '\n':
			s.line++
			s.i++
		case strings.HasPrefix(s.src[s.i:], delim):
			s.i += len(delim)
			// Up to two quotes may end the content: """a""""" is `a""`.
			for n := 0; n < 2 && s.peek(0) == delim[0]; n++ {
				s.i++
			}
			return true
		default:
			s.i++
		}
	}
	return false
}

// basicString scans a single-line "string" and returns it unescaped.
func (s *keyScanner) basicString() (string, bool) {
	var b strings.Builder
	s.i++ // "
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch c {
		case '"':
			s.i++
			return b.String(), true
		case '\n':
			return "", false
		case '\\':
			if !s.escape(&b) {
				return "", false
			}
			continue
		}
		b.WriteByte(c)
		s.i++
	}
	return "", false
}

// escape decodes the escape sequence at s.i.
func (s *keyScanner) escape(b *strings.Builder) bool {
	var n int
	switch c := s.peek(1); c {
	case '"', '\\':
		b.WriteByte(c)
		s.i += 2
		return true
	case 'b', 't', 'n', 'f', 'r', 'e':
		b.WriteByte("\b\t\n\f\r\x1b"[strings.IndexByte("btnfre", c)])
		s.i += 2
		return true
	case 'x':
		n = 2
	case 'u':
		n = 4
	case 'U':
		n = 8
	default:
		return false
	}
	if s.i+2+n > len(s.src) {
		return false
	}
	r, err := strconv.ParseUint(s.src[s.i+2:s.i+2+n], 16, 32)
	if err != nil || !utf8.ValidRune(rune(r)) {
		return false
	}
	b.WriteRune(rune(r))
	s.i += 2 + n
	return true
}
