package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Archive is one message archive rule, an [[archive]] table: every
// message published on a topic its filter matches is kept, whatever its
// subscribers. A message several rules match is kept once, under the one
// with the longest retention.
type Archive struct {
	// Topic is the topic filter of the messages kept ("+" and "#"
	// wildcards; a filter starting with one does not match "$" topics).
	// It also names the rule's files: changing it starts a new archive,
	// the old one being kept until its retention. Key archive[i].topic;
	// required.
	Topic string `toml:"topic"`

	// Retention is how long a message is kept, at least 1m. Key
	// archive[i].retention; default "24h".
	Retention Duration `toml:"retention"`

	// MaxBytes caps the rule's files; beyond it the oldest messages are
	// dropped. 0 means no cap; else at least 1MiB. Key
	// archive[i].max_bytes; default "0".
	MaxBytes Size `toml:"max_bytes"`
}

// setDefaults sets the defaults of an [[archive]] table, before its keys
// are decoded.
func (a *Archive) setDefaults() {
	a.Retention = Duration(24 * time.Hour)
}

// archive checks the [[archive]] tables.
func (v *validator) archive(rules []Archive) {
	seen := make(map[string]int)
	for i, r := range rules {
		key := "archive[" + strconv.Itoa(i) + "]"
		switch {
		case r.Topic == "":
			v.add(key+".topic", errors.New("missing (want a topic filter such as \"sensors/#\")"))
		case strings.HasPrefix(r.Topic, "$share/"):
			v.add(key+".topic", fmt.Errorf("%q is a shared subscription, not a topic filter", r.Topic))
		default:
			if err := checkFilter(r.Topic); err != nil {
				v.add(key+".topic", err)
			} else if j, dup := seen[r.Topic]; dup {
				v.add(key+".topic", fmt.Errorf("duplicate topic %q (also archive[%d])", r.Topic, j))
			} else {
				seen[r.Topic] = i
			}
		}
		v.durationRange(key+".retention", r.Retention, Duration(time.Minute), Duration(100*365*24*time.Hour))
		if r.MaxBytes != 0 {
			v.sizeRange(key+".max_bytes", r.MaxBytes, unitMiB, 1<<50)
		}
	}
}
