package conf

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOffline_Load(t *testing.T) {
	src := `[durable_storage]
message_retention_period = "48h"

[[offline]]
topic = "jobs/#"
mode = "queue"
max_messages = 500
max_bytes = "1MiB"

[[offline]]
topic = "news/+/headlines"
mode = "pubsub"
retention = "12h"

[[offline]]
topic = "alerts/#"
mode = "pubsub"
`
	c, err := Parse(strings.NewReader(src), "offline.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Offline) != 3 {
		t.Fatalf("%d rules, want 3", len(c.Offline))
	}
	q := c.Offline[0]
	if n, b := q.QueueLimits(); q.Topic != "jobs/#" || q.Mode != OfflineQueue || n != 500 || b != 1<<20 {
		t.Errorf("queue rule %+v: limits %d, %d", q, n, b)
	}
	if r := c.Offline[1].RetentionOr(c.DurableStorage.MessageRetentionPeriod); r.D() != 12*time.Hour {
		t.Errorf("retention %s, want 12h", r)
	}
	if r := c.Offline[2].RetentionOr(c.DurableStorage.MessageRetentionPeriod); r.D() != 48*time.Hour {
		t.Errorf("default retention %s, want the store's 48h", r)
	}
	if n, b := (Offline{Mode: OfflineQueue}).QueueLimits(); n != DefaultQueueMaxMessages || b != 0 {
		t.Errorf("default queue limits %d, %d", n, b)
	}
	// check-config prints the rules as they were given.
	var buf bytes.Buffer
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(&buf, "printed")
	if err != nil {
		t.Fatalf("Parse(Print(c)): %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("Parse(Print(c)) =\n%+v\nwant\n%+v", back.Offline, c.Offline)
	}
}

func TestOffline_Errors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"missing topic and mode", "[[offline]]\nmax_messages = 3\n",
			[]string{"x.toml:1: offline[0].topic: missing", "x.toml:1: offline[0].mode: missing"}},
		{"unknown mode", "[[offline]]\ntopic = \"a/#\"\nmode = \"fifo\"\n",
			[]string{`x.toml:3: offline[0].mode: invalid value "fifo" (want "queue" or "pubsub")`}},
		{"bad filter", "[[offline]]\ntopic = \"a/#/b\"\nmode = \"queue\"\n",
			[]string{`x.toml:2: offline[0].topic: invalid topic filter "a/#/b"`}},
		{"shared filter", "[[offline]]\ntopic = \"$share/g/a\"\nmode = \"queue\"\n",
			[]string{`x.toml:2: offline[0].topic: "$share/g/a" is a shared subscription`}},
		{"sys", "[[offline]]\ntopic = \"$SYS/#\"\nmode = \"pubsub\"\n",
			[]string{`x.toml:2: offline[0].topic: "$SYS/#": $SYS topics are the broker's own`}},
		{"overlap", "[[offline]]\ntopic = \"a/+/c\"\nmode = \"queue\"\n[[offline]]\ntopic = \"a/b/#\"\nmode = \"pubsub\"\n",
			[]string{`x.toml:5: offline[1].topic: "a/b/#" overlaps offline[0].topic "a/+/c"`}},
		{"queue keys on pubsub", "[[offline]]\ntopic = \"a\"\nmode = \"pubsub\"\nmax_messages = 10\nmax_bytes = \"1KiB\"\n",
			[]string{`x.toml:4: offline[0].max_messages: only with mode = "queue"`, `x.toml:5: offline[0].max_bytes: only with mode = "queue"`}},
		{"retention on queue", "[[offline]]\ntopic = \"a\"\nmode = \"queue\"\nretention = \"1h\"\n",
			[]string{`x.toml:4: offline[0].retention: only with mode = "pubsub"`}},
		{"retention beyond the store's", "[[offline]]\ntopic = \"a\"\nmode = \"pubsub\"\nretention = \"25h\"\n",
			[]string{`x.toml:4: offline[0].retention: 25h is longer than durable_storage.message_retention_period (24h)`}},
		{"retention too short", "[[offline]]\ntopic = \"a\"\nmode = \"pubsub\"\nretention = \"5s\"\n",
			[]string{`x.toml:4: offline[0].retention: 5s is out of range (want 1m to 24h)`}},
		{"max_messages out of range", "[[offline]]\ntopic = \"a\"\nmode = \"queue\"\nmax_messages = 0\n",
			[]string{`x.toml:4: offline[0].max_messages: 0 is out of range (want 1 to 10000000)`}},
		{"wrong type", "[[offline]]\ntopic = \"a\"\nmode = \"queue\"\nmax_messages = \"many\"\n",
			[]string{`x.toml:4: offline[0].max_messages: expected integer, got string "many"`}},
		{"typo", "[[offline]]\ntopic = \"a\"\nmode = \"queue\"\nmax_message = 3\n",
			[]string{`x.toml:4: offline[0].max_message: unknown key (did you mean max_messages?)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.src), "x.toml")
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d = %q, want it to start with %q", i, got[i], w)
				}
			}
		})
	}
}
