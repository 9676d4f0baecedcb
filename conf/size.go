package conf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A Size is a number of bytes, written in TOML as a plain integer (1048576)
// or a string with an optional unit: "1048576", "512KiB", "64MiB", "10GB".
// Binary units are KiB, MiB, GiB and TiB (powers of 1024), decimal units KB,
// MB, GB and TB (powers of 1000), and B is one byte; units ignore case.
type Size int64

// Units of Size.
const (
	unitKB  Size = 1000
	unitMB       = 1000 * unitKB
	unitGB       = 1000 * unitMB
	unitTB       = 1000 * unitGB
	unitKiB Size = 1 << 10
	unitMiB      = 1024 * unitKiB
	unitGiB      = 1024 * unitMiB
	unitTiB      = 1024 * unitGiB
)

// sizeUnits lists the units a size may have.
var sizeUnits = []struct {
	name string
	n    Size
}{
	{"B", 1},
	{"KiB", unitKiB}, {"MiB", unitMiB}, {"GiB", unitGiB}, {"TiB", unitTiB},
	{"KB", unitKB}, {"MB", unitMB}, {"GB", unitGB}, {"TB", unitTB},
}

// String formats s with the unit that divides it exactly into the smallest
// number: "64MiB", "10GB", "1000KiB", "0", or "1023" for sizes no unit
// divides.
func (s Size) String() string {
	if s <= 0 {
		return strconv.FormatInt(int64(s), 10)
	}
	best := sizeUnits[0]
	for _, u := range sizeUnits[1:] {
		if s%u.n == 0 && s/u.n < s/best.n {
			best = u
		}
	}
	if best.n == 1 {
		return strconv.FormatInt(int64(s), 10)
	}
	return strconv.FormatInt(int64(s/best.n), 10) + best.name
}

// MarshalText encodes s like String.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a size such as "64MiB", "10 GB" or "4096".
func (s *Size) UnmarshalText(text []byte) error {
	v, err := parseSize(string(text))
	if err != nil {
		return fmt.Errorf("invalid size %q: %w", text, err)
	}
	*s = v
	return nil
}

var errWantSize = errors.New(`want a whole number of bytes with an optional unit, such as "64MiB" or "1000000"`)

func parseSize(str string) (Size, error) {
	t := strings.TrimSpace(str)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		if t == "" {
			return 0, errors.New("empty")
		}
		return 0, errWantSize
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, errors.New("too large")
	}
	unit := strings.TrimSpace(t[i:])
	if strings.HasPrefix(unit, ".") {
		return 0, errWantSize
	}
	if unit == "" {
		return Size(n), nil
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/int64(u.n) {
				return 0, errors.New("too large")
			}
			return Size(n) * u.n, nil
		}
	}
	return 0, fmt.Errorf("unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", unit)
}
