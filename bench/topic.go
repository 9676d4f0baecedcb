package bench

import (
	"strconv"
	"strings"
)

// expand replaces every %i in pattern with the client index i.
func expand(pattern string, i int) string {
	if !strings.Contains(pattern, "%i") {
		return pattern
	}
	return strings.ReplaceAll(pattern, "%i", strconv.Itoa(i))
}

// splitShared splits a shared subscription "$share/group/filter" into its
// group and filter; other filters return an empty group.
func splitShared(filter string) (group, f string) {
	rest, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return "", filter
	}
	group, f, ok = strings.Cut(rest, "/")
	if !ok {
		return "", filter
	}
	return group, f
}

// match reports whether topic name matches topic filter, with MQTT's + and
// # wildcards; a wildcard in the first level does not match a topic that
// starts with $ [MQTT-4.7.2-1]. filter must not be a shared subscription.
func match(filter, topic string) bool {
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

// fanout returns how many copies of a message published to topic the
// given subscription filters receive: one per matching ordinary filter and
// one per shared-subscription group with a matching member (the broker
// picks one member per group).
func fanout(filters []string, topic string) int {
	n := 0
	groups := map[string]bool{}
	for _, f := range filters {
		g, f := splitShared(f)
		if !match(f, topic) {
			continue
		}
		if g == "" {
			n++
		} else if !groups[g+"/"+f] {
			groups[g+"/"+f] = true
			n++
		}
	}
	return n
}
