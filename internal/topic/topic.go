// Package topic holds MQTT topic helpers shared by the broker's archive,
// the admin API and the load tool.
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
