package packet

import (
	"fmt"
	"strings"
)

// sharePrefix starts a shared subscription filter, $share/{group}/{filter}
// [MQTT-4.8.2 in v5].
const sharePrefix = "$share/"

// ValidTopicName reports whether s can be the topic of a PUBLISH (or a
// will, or a Response Topic): at least one byte [MQTT-4.7.3-1], at most
// 65535 bytes [MQTT-4.7.3-3], valid UTF-8 without U+0000 [MQTT-4.7.3-2],
// and no wildcard characters [MQTT-3.3.2-2]. It returns nil or an error
// wrapping TopicNameInvalid. It is safe for concurrent use.
func ValidTopicName(s string) error {
	if why := checkTopicString(s); why != "" {
		return fmt.Errorf("topic name: %s: %w", why, TopicNameInvalid)
	}
	if strings.ContainsAny(s, "+#") {
		return fmt.Errorf("topic name: wildcard character: %w", TopicNameInvalid)
	}
	return nil
}

// ValidTopicFilter reports whether s can be the topic filter of a
// SUBSCRIBE or UNSUBSCRIBE: a valid topic string (see ValidTopicName)
// where "+" fills a whole level [MQTT-4.7.1-3] and "#" fills the last one
// [MQTT-4.7.1-2]. A shared subscription $share/{group}/{filter} is valid
// when group is not empty and holds none of "/", "+", "#" [MQTT-4.8.2-1,
// MQTT-4.8.2-2] and filter is valid. It returns nil or an error wrapping
// TopicFilterInvalid. It is safe for concurrent use.
func ValidTopicFilter(s string) error {
	if why := checkTopicString(s); why != "" {
		return fmt.Errorf("topic filter: %s: %w", why, TopicFilterInvalid)
	}
	if rest, shared := strings.CutPrefix(s, sharePrefix); shared {
		group, filter, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") {
			return fmt.Errorf("topic filter: bad shared subscription group: %w", TopicFilterInvalid)
		}
		if filter == "" {
			return fmt.Errorf("topic filter: empty shared subscription filter: %w", TopicFilterInvalid)
		}
		s = filter
	}
	for s != "" {
		level, rest, more := strings.Cut(s, "/")
		if level != "+" && level != "#" && strings.ContainsAny(level, "+#") {
			return fmt.Errorf("topic filter: wildcard inside a level: %w", TopicFilterInvalid)
		}
		if level == "#" && more {
			return fmt.Errorf("topic filter: # not last: %w", TopicFilterInvalid)
		}
		s = rest
	}
	return nil
}

// SharedFilter splits a shared subscription filter $share/{group}/{filter}
// into its group and filter. ok is false when s is not one; it does not
// check that group and filter are valid (ValidTopicFilter does).
func SharedFilter(s string) (group, filter string, ok bool) {
	rest, isShared := strings.CutPrefix(s, sharePrefix)
	if !isShared {
		return "", "", false
	}
	if group, filter, ok = strings.Cut(rest, "/"); !ok {
		return "", "", false
	}
	return group, filter, true
}

// checkTopicString checks the rules topic names and filters share and
// says what is wrong, or returns "".
func checkTopicString(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > maxString:
		return "longer than 65535 bytes"
	case !validUTF8String(s):
		return "invalid UTF-8"
	}
	return ""
}
