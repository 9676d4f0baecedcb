package conf

import (
	"math"
	"strings"
	"testing"
)

func TestSize_UnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "1B", want: 1},
		{in: "512KiB", want: 512 << 10},
		{in: "64MiB", want: 64 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "10KB", want: 10_000},
		{in: "10MB", want: 10_000_000},
		{in: "10GB", want: 10_000_000_000},
		{in: "3TB", want: 3_000_000_000_000},
		{in: "64mib", want: 64 << 20},
		{in: " 64 MiB ", want: 64 << 20},
		{in: "", wantErr: `invalid size "": empty`},
		{in: "MiB", wantErr: "want a whole number"},
		{in: "-1", wantErr: "want a whole number"},
		{in: "1.5MiB", wantErr: "want a whole number"},
		{in: "10 parsecs", wantErr: `unknown unit "parsecs"`},
		{in: "64M", wantErr: `unknown unit "M"`},
		{in: "99999999999999999999", wantErr: "too large"},
		{in: "9000000TiB", wantErr: "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var s Size
			err := s.UnmarshalText([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UnmarshalText(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || s != tc.want {
				t.Fatalf("UnmarshalText(%q) = %d, %v, want %d", tc.in, s, err, tc.want)
			}
		})
	}
}

func TestSize_String(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1023, "1023"},
		{1024, "1KiB"},
		{1000, "1KB"},
		{1 << 20, "1MiB"},
		{268435455, "268435455"},
		{1_024_000, "1000KiB"},
		{10_000_000_000, "10GB"},
		{1_000_000_000_000, "1TB"},
		{5 << 40, "5TiB"},
		{math.MaxInt64, "9223372036854775807"},
	}
	for _, tc := range tests {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
	}
}

func TestSize_RoundTrip(t *testing.T) {
	sizes := []Size{0, 1, 16, 999, 1000, 1024, 1536, 1 << 20, 268435455, 1e9, 3 << 30, 7e12, math.MaxInt64}
	for n := Size(1); n < math.MaxInt64/7; n *= 7 {
		sizes = append(sizes, n, n+1)
	}
	for _, s := range sizes {
		text, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Size
		if err := got.UnmarshalText(text); err != nil || got != s {
			t.Errorf("Size(%d) → %q → %d, %v", int64(s), text, int64(got), err)
		}
	}
}
