package main

import "testing"

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.0":            "1.2.0",
		"1.2.0":             "1.2.0",
		"v1.2.0-3-gabc1234": "1.2.0+3.gabc1234",
		"v1.2.0-dirty":      "1.2.0+dirty",
		"abc1234":           "0.0.0~git.abc1234",
		"abc1234-dirty":     "0.0.0~git.abc1234.dirty",
		"dev":               "0.0.0~git.dev",
	} {
		if got := debVersion(in); got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
