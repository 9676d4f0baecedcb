package bench

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/#", "a", true}, // # includes the parent level
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+/+", "/x", true},
		{"+", "/x", false},
		{"bench/in/+", "bench/in/42", true},
		{"bench/in/+", "bench/out/42", false},
		{"a", "a/b", false},
		{"#", "$SYS/broker", false}, // [MQTT-4.7.2-1]
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
	}
	for _, tc := range cases {
		t.Run(tc.filter+" "+tc.topic, func(t *testing.T) {
			if got := match(tc.filter, tc.topic); got != tc.want {
				t.Errorf("match(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
			}
		})
	}
}

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
