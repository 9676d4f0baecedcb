package conf

import (
	"errors"
	"fmt"
	"gatemq/internal/topic"
	"strconv"
	"strings"
	"time"
)

// Offline message modes, the values of an [[offline]] table's mode key.
const (
	OfflineQueue  = "queue"  // one-to-one: each message to exactly one subscriber
	OfflinePubsub = "pubsub" // one-to-many: each subscriber reads from its stored position
)

// DefaultQueueMaxMessages is a queue's max_messages when the table leaves
// it out.
const DefaultQueueMaxMessages = 10000

// maxQueueMessages bounds max_messages: a queue keeps an index entry of
// about 100 bytes per waiting message in memory.
const maxQueueMessages = 10_000_000

// Offline is an offline message rule, one [[offline]] table: QoS 1 and 2
// messages published on topics matching Topic are stored whatever their
// subscribers, and delivered as Mode says. Keys that apply to one mode
// only are pointers: nil unless the file sets them, so that setting one
// for the other mode is an error rather than ignored.
type Offline struct {
	// Topic is the topic filter the rule applies to ("+" and "#"
	// allowed; not $share/, not $SYS). Filters of two rules may not
	// match a common topic. Key offline[i].topic; required.
	Topic string `toml:"topic"`

	// Mode is "queue" (each message kept until exactly one subscriber has
	// acknowledged it) or "pubsub" (each message kept until retention;
	// each client ID reads from its own stored position). Key
	// offline[i].mode; required.
	Mode string `toml:"mode"`

	// MaxMessages caps the messages a queue holds, waiting or in flight,
	// 1 to 10000000; a publish beyond it is refused (v5 0x97, 3.x
	// disconnected). Queue only. Key offline[i].max_messages; default
	// 10000.
	MaxMessages *int `toml:"max_messages"`

	// MaxBytes caps the payload bytes a queue holds; 0 means no cap
	// beyond max_messages. Queue only. Key offline[i].max_bytes; default
	// "0".
	MaxBytes *Size `toml:"max_bytes"`

	// Retention is how long a pubsub rule's messages are delivered after
	// they were published, 1m to durable_storage.message_retention_period
	// (the store keeps nothing longer). Pubsub only. Key
	// offline[i].retention; default durable_storage.message_retention_period.
	Retention *Duration `toml:"retention"`
}

// QueueLimits returns a queue rule's max_messages and max_bytes, with
// their defaults.
func (o Offline) QueueLimits() (messages int, bytes int64) {
	messages = DefaultQueueMaxMessages
	if o.MaxMessages != nil {
		messages = *o.MaxMessages
	}
	if o.MaxBytes != nil {
		bytes = int64(*o.MaxBytes)
	}
	return messages, bytes
}

// RetentionOr returns a pubsub rule's retention, or storeRetention when
// the table leaves it out.
func (o Offline) RetentionOr(storeRetention Duration) Duration {
	if o.Retention != nil {
		return *o.Retention
	}
	return storeRetention
}

// offline checks the [[offline]] tables.
func (v *validator) offline(rules []Offline, storeRetention Duration) {
	for i, o := range rules {
		key := "offline[" + strconv.Itoa(i) + "]"
		if err := checkOfflineTopic(o.Topic); err != nil {
			v.add(key+".topic", err)
		} else {
			for j := range i {
				if checkOfflineTopic(rules[j].Topic) == nil && topic.Overlap(rules[j].Topic, o.Topic) {
					v.add(key+".topic", fmt.Errorf("%q overlaps offline[%d].topic %q: a topic may follow one rule only", o.Topic, j, rules[j].Topic))
					break
				}
			}
		}
		switch o.Mode {
		case OfflineQueue:
			if o.Retention != nil {
				v.add(key+".retention", errors.New(`only with mode = "pubsub" (a queue keeps a message until it is consumed)`))
			}
			if o.MaxMessages != nil {
				v.intRange(key+".max_messages", int64(*o.MaxMessages), 1, maxQueueMessages)
			}
			if o.MaxBytes != nil {
				v.sizeRange(key+".max_bytes", *o.MaxBytes, 0, 1<<50)
			}
		case OfflinePubsub:
			if o.MaxMessages != nil {
				v.add(key+".max_messages", errors.New(`only with mode = "queue"`))
			}
			if o.MaxBytes != nil {
				v.add(key+".max_bytes", errors.New(`only with mode = "queue"`))
			}
			if o.Retention != nil {
				if *o.Retention > storeRetention {
					v.add(key+".retention", fmt.Errorf("%s is longer than durable_storage.message_retention_period (%s), which drops stored messages", *o.Retention, storeRetention))
				} else {
					v.durationRange(key+".retention", *o.Retention, Duration(time.Minute), storeRetention)
				}
			}
		case "":
			v.add(key+".mode", errors.New(`missing (want "queue" or "pubsub")`))
		default:
			v.add(key+".mode", fmt.Errorf(`invalid value %q (want "queue" or "pubsub")`, o.Mode))
		}
	}
}

// checkOfflineTopic checks the topic filter of an offline rule.
func checkOfflineTopic(f string) error {
	if f == "" {
		return errors.New(`missing (want a topic filter such as "jobs/#")`)
	}
	if err := checkFilter(f); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(f, "$share/"):
		return fmt.Errorf("%q is a shared subscription: give the topic filter itself", f)
	case strings.HasPrefix(f, "$SYS"):
		return fmt.Errorf("%q: $SYS topics are the broker's own", f)
	case strings.ContainsRune(f, 0):
		return fmt.Errorf("%q holds U+0000", f)
	}
	return nil
}
