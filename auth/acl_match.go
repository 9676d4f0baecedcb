package auth

import "strings"

// CanPublish reports whether the client may publish to topic, a topic
// name. Anonymous clients have username "". A topic name containing a
// wildcard or empty is refused.
func (a *ACL) CanPublish(clientID, username, topic string) bool {
	return validTopicName(topic) && a.allowed(clientID, username, topic, accessWrite)
}

// CanReceive reports whether the client may be sent a message published
// to topic. The broker calls it for every delivery, retained messages
// included, since a subscription filter can match topics the client may
// not read.
func (a *ACL) CanReceive(clientID, username, topic string) bool {
	return validTopicName(topic) && a.allowed(clientID, username, topic, accessRead)
}

// CanSubscribe reports whether the client may subscribe to filter: some
// rule granting read must match every topic the filter matches (the
// rule's filter covers the subscription's, wildcards in the subscription
// standing only for themselves), and no deny rule may cover it. A deny
// rule covering part of the filter does not refuse the subscription:
// CanReceive drops those messages. For a shared subscription,
// $share/GROUP/FILTER, FILTER is checked. An invalid filter is refused.
func (a *ACL) CanSubscribe(clientID, username, filter string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") {
			return false // [MQTT-4.8.2-1], [MQTT-4.8.2-2]
		}
		filter = f
	}
	return validFilter(filter) && a.allowed(clientID, username, filter, accessRead)
}

// validFilter reports whether f is a topic filter [MQTT-4.7.1], as
// parseFilter does but without allocating.
func validFilter(f string) bool {
	if f == "" {
		return false
	}
	for {
		lv, rest, more := strings.Cut(f, "/")
		if lv != "#" && lv != "+" && strings.ContainsAny(lv, "+#") || lv == "#" && more {
			return false
		}
		if !more {
			return true
		}
		f = rest
	}
}

func validTopicName(t string) bool {
	return t != "" && !strings.ContainsAny(t, "+#") // [MQTT-4.7.1-1], [MQTT-4.7.3-1]
}

// allowed applies the rules to s, a topic name or a valid subscription
// filter: any matching deny rule refuses, then any matching rule granting
// want allows, and otherwise access is refused.
func (a *ACL) allowed(clientID, username, s string, want access) bool {
	rs := &a.anon
	if username != "" {
		rs = a.users[username] // nil for a user without a section
	}
	c := client{id: clientID, username: username}
	if rs != nil {
		for i := range rs.deny {
			if rs.deny[i].covers(s, c, true) {
				return false
			}
		}
	}
	for i := range a.patterns.deny {
		if a.patterns.deny[i].covers(s, c, true) {
			return false
		}
	}
	if rs != nil {
		for i := range rs.allow {
			if r := &rs.allow[i]; r.access&want != 0 && r.covers(s, c, false) {
				return true
			}
		}
	}
	for i := range a.patterns.allow {
		if r := &a.patterns.allow[i]; r.access&want != 0 && r.covers(s, c, false) {
			return true
		}
	}
	return false
}

// client is what %c and %u stand for.
type client struct {
	id, username string
}

// safeLevel reports whether v can stand for exactly one literal topic
// level: not empty and without '/', '+' or '#'.
func safeLevel(v string) bool {
	return v != "" && !strings.ContainsAny(v, "/+#")
}

// covers reports whether every topic that s matches is matched by the
// rule's filter. s is a topic name or a subscription filter; its wildcards
// are matched only by the rule's wildcards: + by + or #, # by #.
//
// A %c or %u level matches the one level equal to the client ID or user
// name. A value that is not a safe level (empty, as for anonymous
// clients, or containing '/', '+' or '#') matches nothing in a rule that
// grants, and matches any single level, like +, in a deny rule: a
// substitution can only narrow access.
//
// A topic or filter starting with '$' is matched only by a rule whose
// first level is a literal (Mosquitto's rule, a stricter [MQTT-4.7.2-1]).
func (r *rule) covers(s string, c client, deny bool) bool {
	if s != "" && s[0] == '$' && r.levels[0].kind != levelLiteral {
		return false
	}
	rest, done := s, false
	for _, l := range r.levels {
		if l.kind == levelHash {
			return true // also matches the parent level [MQTT-4.7.1-2]
		}
		if done {
			return false
		}
		var lv string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			lv, rest = rest[:i], rest[i+1:]
		} else {
			lv, rest, done = rest, "", true
		}
		switch l.kind {
		case levelLiteral:
			if lv != l.text {
				return false
			}
		case levelPlus:
			if lv == "#" {
				return false
			}
		case levelClientID, levelUsername:
			v := c.id
			if l.kind == levelUsername {
				v = c.username
			}
			switch {
			case safeLevel(v):
				if lv != v {
					return false
				}
			case !deny || lv == "#":
				return false
			}
		}
	}
	return done
}
