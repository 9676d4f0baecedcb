package conf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrUnknownKey is wrapped by the [Error] that Load and Parse return for a
// key or table the schema does not have, usually a typo.
var ErrUnknownKey = errors.New("unknown key")

// An Error is a problem with one key of a configuration file. Load and Parse
// return one *Error, or several joined with [errors.Join] (reach them with
// errors.As or Unwrap() []error); Validate returns them without File and Line.
//
// Its message reads like a compiler's:
//
//	gatemq.toml:12: mqtt.max_keepalive: unknown key
type Error struct {
	File string // file name given to Load or Parse; "" if none
	Line int    // line of the key, starting at 1; 0 if unknown
	Key  string // dotted key with array indices, "listener[1].address"; "" if none
	Err  error  // what is wrong
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// syntaxError carries a TOML syntax error; its message drops the "toml: line
// N" prefix because the enclosing Error prints file and line itself.
type syntaxError struct{ pe toml.ParseError }

func (e syntaxError) Error() string { return e.pe.Message }
func (e syntaxError) Unwrap() error { return e.pe }

// joinErrors returns nil, the only error, or all of them joined.
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
