package conf

import (
	"slices"
	"strings"
	"testing"
)

func TestChanged(t *testing.T) {
	parse := func(src string) Config {
		t.Helper()
		c, err := Parse(strings.NewReader(src), "test.toml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := `
[mqtt]
max_inflight = 10
[[listener]]
address = "127.0.0.1:1883"
[[listener]]
address = "127.0.0.1:1884"
`
	tests := []struct {
		name, src string
		want      []string
	}{
		{"same", base, nil},
		{"same, written otherwise", strings.Replace(base, "max_inflight = 10", "max_inflight = 0x0a\ndeny_subscribe = []", 1), nil},
		{"scalars and a duration", strings.Replace(base, "[mqtt]", "data_dir = \"/x\"\n[mqtt]\nsys_interval = \"1m\"", 1) + "[log]\nlevel = \"debug\"\n",
			[]string{"data_dir", "log.level", "mqtt.sys_interval"}},
		{"a listener's keys", strings.Replace(base, `"127.0.0.1:1884"`, `"127.0.0.1:1885"`+"\nallow_anonymous = true\nmax_connections = 3", 1),
			[]string{"listener[1].address", "listener[1].max_connections", "listener[1].allow_anonymous"}},
		{"one listener fewer", "[mqtt]\nmax_inflight = 10\n", []string{"listener"}},
		{"a list", strings.Replace(base, "max_inflight = 10", "max_inflight = 10\ndeny_subscribe = [\"#\"]", 1), []string{"mqtt.deny_subscribe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Changed(parse(base), parse(tc.src)); !slices.Equal(got, tc.want) {
				t.Errorf("Changed = %q, want %q", got, tc.want)
			}
		})
	}
}
