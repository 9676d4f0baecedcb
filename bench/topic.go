package bench

import (
	"strconv"
	"strings"

	"gatemq/internal/topic"
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

// fanout returns how many copies of a message published to the topic name
// the given subscription filters receive: one per matching ordinary filter
// and one per shared-subscription group with a matching member (the broker
// picks one member per group).
func fanout(filters []string, name string) int {
	n := 0
	groups := map[string]bool{}
	for _, f := range filters {
		g, f := splitShared(f)
		if !topic.Match(f, name) {
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
