package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLine bounds a line of a password or ACL file: a 65535-byte user
// name or topic filter and its keyword or hash fit.
const maxLine = 128 << 10

// eachLine calls fn with the number and text of each line of r that is
// neither blank nor a comment (first non-blank character '#'), without its
// line ending or trailing white space. An error from fn or from reading
// becomes a ParseError naming the line.
func eachLine(r io.Reader, name string, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRightFunc(sc.Text(), unicode.IsSpace)
		if t := strings.TrimLeftFunc(line, unicode.IsSpace); t == "" || t[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			return &ParseError{File: name, Line: n, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("%w: line longer than %d bytes", ErrSyntax, maxLine)
		}
		return &ParseError{File: name, Line: n + 1, Err: err}
	}
	return nil
}

// checkUsername reports why u cannot be a user name: MQTT user names are
// UTF-8 strings of at most 65535 bytes [MQTT-1.5.4-1]; ':' separates the
// name from the hash and a leading '#' makes a comment; control characters
// and surrounding white space are refused because they are invisible in a
// file and on a terminal.
func checkUsername(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("%w: empty", ErrBadUsername)
	case len(u) > 65535:
		return fmt.Errorf("%w: longer than 65535 bytes", ErrBadUsername)
	case !utf8.ValidString(u):
		return fmt.Errorf("%w: not UTF-8", ErrBadUsername)
	case strings.ContainsRune(u, ':'):
		return fmt.Errorf("%w: %q contains ':'", ErrBadUsername, u)
	case u[0] == '#':
		return fmt.Errorf("%w: %q starts with '#', which makes its line a comment", ErrBadUsername, u)
	case strings.IndexFunc(u, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %q contains a control character", ErrBadUsername, u)
	case strings.TrimFunc(u, unicode.IsSpace) != u:
		return fmt.Errorf("%w: %q starts or ends with white space", ErrBadUsername, u)
	}
	return nil
}
