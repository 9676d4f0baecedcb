package conf

import (
	"strings"
	"testing"
	"time"
)

func TestDuration_UnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "30s", want: 30 * time.Second},
		{in: "1h", want: time.Hour},
		{in: "1m30s", want: 90 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: " 2h ", want: 2 * time.Hour},
		{in: "-5s", want: -5 * time.Second}, // Validate rejects it where it matters
		{in: "", wantErr: `invalid duration ""`},
		{in: "10", wantErr: `invalid duration "10"`},
		{in: "10 parsecs", wantErr: `invalid duration "10 parsecs"`},
		{in: "1d", wantErr: `invalid duration "1d"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UnmarshalText(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || d.D() != tc.want {
				t.Fatalf("UnmarshalText(%q) = %v, %v, want %v", tc.in, d.D(), err, tc.want)
			}
		})
	}
}

func TestDuration_RoundTrip(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{time.Nanosecond, "1ns"},
		{500 * time.Millisecond, "500ms"},
		{10 * time.Second, "10s"},
		{90 * time.Second, "1m30s"},
		{time.Minute, "1m"},
		{2 * time.Hour, "2h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{1500 * time.Millisecond, "1.5s"},
		{-time.Minute, "-1m"},
		{4294967295 * time.Second, "1193046h28m15s"},
	}
	for _, tc := range tests {
		text, err := Duration(tc.in).MarshalText()
		if err != nil || string(text) != tc.want {
			t.Errorf("MarshalText(%v) = %q, %v, want %q", tc.in, text, err, tc.want)
		}
		var got Duration
		if err := got.UnmarshalText(text); err != nil || got.D() != tc.in {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v", text, got.D(), err, tc.in)
		}
	}
}
