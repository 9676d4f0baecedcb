package conf

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoad_Archive(t *testing.T) {
	c, err := Parse(strings.NewReader(`
[[archive]]
topic = "sensors/#"
retention = "168h"
max_bytes = "64MiB"

[[archive]]
topic = "alarms/+/raised"
`), "archive.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Archive{
		{Topic: "sensors/#", Retention: Duration(168 * time.Hour), MaxBytes: 64 << 20},
		{Topic: "alarms/+/raised", Retention: Duration(24 * time.Hour)},
	}
	if !reflect.DeepEqual(c.Archive, want) {
		t.Fatalf("archive rules %+v, want %+v", c.Archive, want)
	}
}

func TestLoad_ArchiveErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    []string
	}{
		{
			name:    "no topic",
			content: "[[archive]]\nretention = \"1h\"\n",
			want:    []string{"1: archive[0].topic: missing"},
		},
		{
			name:    "bad filter and short retention",
			content: "[[archive]]\ntopic = \"a/#/b\"\nretention = \"30s\"\n",
			want: []string{
				`2: archive[0].topic: invalid topic filter "a/#/b"`,
				"3: archive[0].retention: 30s is out of range (want 1m to",
			},
		},
		{
			name:    "duplicate topic",
			content: "[[archive]]\ntopic = \"#\"\n\n[[archive]]\ntopic = \"#\"\n",
			want:    []string{`5: archive[1].topic: duplicate topic "#" (also archive[0])`},
		},
		{
			name:    "shared subscription",
			content: "[[archive]]\ntopic = \"$share/g/a\"\n",
			want:    []string{`2: archive[0].topic: "$share/g/a" is a shared subscription`},
		},
		{
			name:    "tiny cap, days, unknown key",
			content: "[[archive]]\ntopic = \"a\"\nmax_bytes = \"1KiB\"\n\n[[archive]]\ntopic = \"b\"\nretention = \"7d\"\nmax_byte = 5\n",
			want: []string{
				"3: archive[0].max_bytes: 1KiB is out of range (want 1048576 to",
				`7: archive[1].retention: invalid duration "7d"`,
				"8: archive[1].max_byte: unknown key (did you mean max_bytes?)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkLoadErrors(t, tc.content, tc.want) })
	}
}
