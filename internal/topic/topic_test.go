package topic

import (
	"strings"
	"testing"

	"gatemq/broker/packet"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/#", "a", true}, // # includes the parent level
		{"a/#", "a/b/c", true},
		{"a/#", "b", false},
		{"a/b/#", "a/b", true},
		{"a/b/#", "a/bc", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"#", "a/b", true},
		{"#", "/", true},
		{"+", "a", true},
		{"+", "", true},
		{"+/+", "/x", true},
		{"+", "/x", false},
		{"bench/in/+", "bench/in/42", true},
		{"bench/in/+", "bench/out/42", false},
		{"#", "$SYS/broker", false}, // [MQTT-4.7.2-1]
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"$SYS/+", "$SYS/broker", true},
	}
	for _, tc := range cases {
		if got := Match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Match("sensors/+/temp/#", "sensors/17/temp/x/y") }); n != 0 {
		t.Errorf("Match allocates %.0f times", n)
	}
}

// match is Match written the plain way, splitting both into levels: the
// reference FuzzMatch holds Match to.
func match(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || (f != "+" && f != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"a/+/c", "a/b/c"}, {"#", "$x"}, {"a/#", "a"}, {"+/", "/"}, {"a//b", "a//b"}, {"a/+", "a"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if packet.ValidTopicFilter(filter) != nil || packet.ValidTopicName(name) != nil {
			return
		}
		if a, b := Match(filter, name), match(filter, name); a != b {
			t.Fatalf("Match(%q, %q) = %v, the plain way %v", filter, name, a, b)
		}
	})
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/+", "a/b", true}, {"a/+", "a/b/c", false},
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"a/#", "b/#", false}, {"+/b", "a/+", true},
		{"#", "x/y", true}, {"#", "$x/y", false}, {"+/y", "$x/y", false}, {"$x/#", "$x/y", true},
		{"$x/+", "+/y", false}, {"a/b/c", "a/b", false}, {"+", "+/+", false}, {"+/#", "+", true},
	}
	for _, tc := range tests {
		if got := Overlap(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Overlap(tc.b, tc.a); got != tc.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
