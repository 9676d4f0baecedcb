package conf

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path over Default(), rejects unknown keys and
// validates the result. On error it returns a zero Config and every problem
// found, each an *Error naming path, line and key:
//
//	/etc/gatemq/gatemq.toml:12: mqtt.max_keepalive: unknown key
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}
	return parse(data, path)
}

// Parse is Load for a configuration read from r; name stands for the file
// name in errors.
func Parse(r io.Reader, name string) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, fmt.Errorf("read config %s: %w", name, err)
	}
	return parse(data, name)
}

func parse(data []byte, name string) (Config, error) {
	var doc map[string]any
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, newSyntaxError(data, name, pe)
		}
		return Config{}, &Error{File: name, Err: err}
	}

	c := Default()
	var b binder
	b.table("", doc, reflect.ValueOf(&c).Elem())
	errs := b.errs
	// Validate even after binding errors, so one run reports every mistake,
	// but say nothing more about keys that failed to bind, or lie inside
	// one: their values are still the defaults.
	failed := make(map[string]bool, len(b.errs))
	for _, e := range b.errs {
		failed[e.Key] = true
	}
	for _, e := range c.validate() {
		if !failedWithin(failed, e.Key) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return c, nil
	}

	lines := scanKeyLines(string(data), md.Keys())
	for _, e := range errs {
		e.File = name
		e.Line = lines.lineOf(e.Key)
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Compare(sortLine(a), sortLine(b))
	})
	return Config{}, joinErrors(errs)
}

// newSyntaxError turns a toml.ParseError into an *Error, correcting two
// quirks of toml's report. Its Line is that of the lexer after reading the
// offending byte, one too many when that byte is a newline ("[mqtt" followed
// by a newline is reported on the next line), so Line becomes that of the
// last byte of the error span when that is earlier. Its LastKey is the
// enclosing table when the error is not inside a key/value pair ("[mqtt"
// after [log] has LastKey "log"), so the key is kept only if it is written on
// the error line.
func newSyntaxError(data []byte, name string, pe toml.ParseError) *Error {
	src := string(data)
	// toml's offsets count from after a byte-order mark.
	for _, bom := range []string{"\xff\xfe", "\xfe\xff", "\xef\xbb\xbf"} {
		if strings.HasPrefix(src, bom) {
			src = src[len(bom):]
			break
		}
	}
	line := pe.Position.Line
	if end := pe.Position.Start + max(pe.Position.Len, 1) - 1; end >= 0 && end < len(src) {
		line = min(line, 1+strings.Count(src[:end], "\n"))
	}
	key := pe.LastKey
	if key != "" {
		lines := strings.Split(src, "\n")
		last := key[strings.LastIndexByte(key, '.')+1:]
		if line < 1 || line > len(lines) || !strings.Contains(lines[line-1], strings.Trim(last, `"`)) {
			key = ""
		}
	}
	return &Error{File: name, Line: line, Key: key, Err: syntaxError{pe}}
}

// sortLine orders errors by line, those without one last.
func sortLine(e *Error) int {
	if e.Line == 0 {
		return math.MaxInt
	}
	return e.Line
}

// failedWithin reports whether key or one of its parents is in failed.
func failedWithin(failed map[string]bool, key string) bool {
	for ; key != ""; key = parentKey(key) {
		if failed[key] {
			return true
		}
	}
	return false
}

// Print writes c as TOML that Parse reads back to an equal Config, for
// checking the configuration in effect. Print writes every key, including
// those at their defaults.
func Print(w io.Writer, c Config) error {
	enc := toml.NewEncoder(w)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	return nil
}
