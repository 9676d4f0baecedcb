// Package topic holds MQTT topic helpers shared by the broker's archive,
// offline rules, the admin API, the configuration and the load tool.
package topic

import "strings"

// Match reports whether topic name matches topic filter, with MQTT's +
// and # wildcards [MQTT-4.7]: "+" takes one level, a last "#" its parent
// level and every level below, and a wildcard in the first level does
// not match a topic starting with "$" [MQTT-4.7.2-1]. filter must not be
// a shared subscription. It does not allocate, so it can be asked for
// every message; it is safe for concurrent use.
func Match(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true // # matches the parent level too [MQTT-4.7.1-2]
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// Overlap reports whether some topic matches both filters a and b,
// wildcards included; a filter starting with a wildcard does not match a
// "$" topic [MQTT-4.7.2-1]. Both must be valid filters, not shared
// subscriptions.
func Overlap(a, b string) bool {
	dollar := strings.HasPrefix(a, "$") || strings.HasPrefix(b, "$")
	for level := 0; ; level++ {
		x, aRest, aMore := strings.Cut(a, "/")
		y, bRest, bMore := strings.Cut(b, "/")
		if x == "#" || y == "#" {
			return level > 0 || !dollar || x == y
		}
		wild := x == "+" || y == "+"
		if x != y && (!wild || level == 0 && dollar) {
			return false
		}
		if !aMore || !bMore {
			return aMore == bMore || aMore && aRest == "#" || bMore && bRest == "#"
		}
		a, b = aRest, bRest
	}
}
