package conf

import (
	"fmt"
	"strings"
	"time"
)

// A Duration is a time.Duration written in TOML as a string that
// [time.ParseDuration] accepts: "30s", "1m30s", "500ms", "2h". Bare integers
// are rejected, since "10" could mean seconds or nanoseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d compactly: "2h", "1h30m", "10s", "500ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	// time.Duration.String writes "2h0m0s"; drop the zero units at the end.
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText encodes d like String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string such as "30s". Negative durations
// parse; Validate rejects them where they make no sense.
func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf(`invalid duration %q (want a number and unit such as "30s", "1m30s" or "500ms"; units h, m, s, ms, us, ns)`, s)
	}
	*d = Duration(v)
	return nil
}
