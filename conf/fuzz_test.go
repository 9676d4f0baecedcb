package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse checks that Parse never panics, that what it accepts is valid
// and survives Print, that every error is an *Error naming the file, and
// that the key scanner agrees with toml on every document toml accepts.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, tc := range errorCases {
		f.Add(tc.content)
	}
	for _, tc := range scanCases {
		f.Add(tc.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse(strings.NewReader(src), "fuzz.toml")
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted an invalid config: %v", err)
			}
			var buf bytes.Buffer
			if err := Print(&buf, c); err != nil {
				t.Fatalf("Print: %v", err)
			}
			got, err := Parse(&buf, "printed")
			if err != nil {
				t.Fatalf("Parse(Print(c)): %v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("Parse(Print(c)) =\n%+v\nwant\n%+v", got, c)
			}
		} else {
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "fuzz.toml" || !strings.HasPrefix(e.Error(), "fuzz.toml") {
					t.Fatalf("error %q is not an *Error naming the file", e)
				}
			}
		}

		var doc map[string]any
		if md, err := toml.Decode(src, &doc); err == nil {
			// The scan gives up beyond maxScanDepth levels of nesting.
			shallow := strings.Count(src, "[")+strings.Count(src, "{") < maxScanDepth
			if kl := scanKeyLines(src, md.Keys()); kl == nil && shallow {
				t.Errorf("key scan disagrees with toml on keys %v", md.Keys())
			}
		}
	})
}
