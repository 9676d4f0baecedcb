package conf

import (
	"reflect"
	"strings"
	"testing"
)

func TestLoad_PresetSubscriptions(t *testing.T) {
	c, err := Load(writeConfig(t, `
[[preset_subscription]]
topic = "devices/%c/cmd"
qos = 1

[[preset_subscription]]
client = "plc-7"
topic = "users/%u/+/config"
qos = 2
no_local = true
retain_as_published = true
retain_handling = 1

[[preset_subscription]]
client = ""
topic = "$share/g/jobs/#"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []PresetSubscription{
		{Client: "*", Topic: "devices/%c/cmd", QoS: 1},
		{Client: "plc-7", Topic: "users/%u/+/config", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1},
		{Client: "", Topic: "$share/g/jobs/#"},
	}
	if !reflect.DeepEqual(c.PresetSubscriptions, want) {
		t.Fatalf("presets %+v\nwant %+v", c.PresetSubscriptions, want)
	}
	if Default().PresetSubscriptions != nil {
		t.Fatal("default has presets")
	}
}

// Every mistake in a rule is reported with the file, the line and the
// key, all in one run.
func TestLoad_PresetSubscriptionErrors(t *testing.T) {
	content := `[[preset_subscription]]
topic = "a/%c#"
qos = 3

[[preset_subscription]]
client = "x"
retain_handling = 5

[[preset_subscription]]
topic = "$share/g/t"
no_local = true
topc = "x"

[[preset_subscription]]
topic = "a/#/b"
qos = "1"
`
	path := writeConfig(t, content)
	_, err := Load(path)
	if err == nil {
		t.Fatal("loaded")
	}
	want := []string{
		path + ":2: preset_subscription[0].topic: invalid topic filter \"a/client#\": a wildcard must be a whole level (with %c and %u replaced",
		path + ":3: preset_subscription[0].qos: 3 is out of range (want 0 to 2)",
		path + ":5: preset_subscription[1].topic: required",
		path + ":7: preset_subscription[1].retain_handling: 5 is out of range (want 0 to 2)",
		path + ":10: preset_subscription[2].topic: no_local is not allowed on a shared subscription",
		path + ":12: preset_subscription[2].topc: unknown key (did you mean topic?)",
		path + ":15: preset_subscription[3].topic: invalid topic filter \"a/#/b\": \"#\" must be the last level",
		path + ":16: preset_subscription[3].qos: expected integer, got string \"1\"",
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
}
