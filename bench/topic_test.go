package bench

import "testing"

func TestFanout(t *testing.T) {
	cases := []struct {
		name    string
		filters []string
		topic   string
		want    int
	}{
		{"fan-in wildcard", []string{"bench/in/+"}, "bench/in/7", 1},
		{"fan-out", []string{"t", "t", "t"}, "t", 3},
		{"pairs", []string{"bench/0", "bench/1"}, "bench/1", 1},
		{"none", []string{"x"}, "y", 0},
		{"shared group counts once", []string{"$share/g/t", "$share/g/t", "t"}, "t", 2},
		{"two groups", []string{"$share/g/t", "$share/h/t"}, "t", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fanout(tc.filters, tc.topic); got != tc.want {
				t.Errorf("fanout(%q, %q) = %d, want %d", tc.filters, tc.topic, got, tc.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	if got := expand("bench/%i/x%i", 12); got != "bench/12/x12" {
		t.Errorf("expand = %q", got)
	}
	if got := expand("bench/out", 3); got != "bench/out" {
		t.Errorf("expand without %%i = %q", got)
	}
}
