package conf

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/print.golden")

// writeConfig writes content to gatemq.toml in a new temporary directory and
// returns its path.
func writeConfig(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatemq.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad_Defaults(t *testing.T) {
	for _, name := range []string{"empty", "comments only", "testdata/defaults.toml"} {
		t.Run(name, func(t *testing.T) {
			var path string
			switch name {
			case "empty":
				path = writeConfig(t, "")
			case "comments only":
				path = writeConfig(t, "# nothing here\n\n   # at all\n")
			default:
				path = name
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := Default(); !reflect.DeepEqual(c, want) {
				t.Fatalf("Load(%s) =\n%+v\nwant Default()\n%+v", name, c, want)
			}
		})
	}
}

func TestLoad_Full(t *testing.T) {
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := Config{
		DataDir:     "/var/lib/gatemq",
		MemoryLimit: 192 << 20,
		GCPercent:   150,
		Log:         Log{Level: "debug", Format: "json"},
		MQTT: MQTT{
			MaxPacketSize:         256 << 10,
			MaxKeepalive:          600,
			SessionExpiryInterval: Duration(24 * time.Hour),
			MaxInflight:           64,
			MaxQueuedMessages:     5000,
			MaxQueuedBytes:        64 << 20,
			QueueQoS0Messages:     true,
			RetainAvailable:       false,
			MaxTopicAlias:         20,
			MaxQoS:                1,
			SysInterval:           0,
			ConnectTimeout:        Duration(5 * time.Second),
			MaxClientIDLen:        128,
			MaxConnections:        2000,
			MaxTopicLevels:        16,
			MaxSubscriptions:      0,
			MaxUserProperties:     8,
			AwaitRelTimeout:       Duration(30 * time.Second),
			DenySubscribe:         []string{},
		},
		Listeners: []Listener{
			{Address: "0.0.0.0:1883", Protocol: "mqtt", MaxConnections: 500, MaxConnectionRate: 5, DurableSessions: &yes},
			{Address: "[::1]:1884", Protocol: "mqtt", MaxConnectionRate: defaultMaxConnectionRate},
			{Address: "0.0.0.0:8884", Protocol: "ws", MaxConnectionRate: defaultMaxConnectionRate, AllowAnonymous: &no,
				PasswordFile: "/etc/gatemq/passwords", ACLFile: "/etc/gatemq/acl",
				TLSCert: "/etc/gatemq/server.pem", TLSKey: "/etc/gatemq/server.key", ClientCA: "/etc/gatemq/ca.pem",
				RequireCertificate: true, CRLFile: "/etc/gatemq/crl.pem"},
		},
		DurableSessions: DurableSessions{Enable: false, BatchSize: 50},
		DurableStorage: DurableStorage{NShards: 4, GenerationInterval: Duration(30 * time.Minute),
			MessageRetentionPeriod: Duration(6 * time.Hour), BatchSize: 128,
			FlushInterval: Duration(2 * time.Millisecond), MaxBytes: 256 << 20},
		Admin:        Admin{Socket: "/run/gatemq/admin.sock", Address: "127.0.0.1:9883", TokenFile: "/etc/gatemq/admin.token"},
		ClientStatus: ClientStatus{OfflineRetention: Duration(7 * 24 * time.Hour)},
		PeerGroup: PeerGroup{Enable: true, Bind: "192.168.1.10:7947", Advertise: "10.0.0.10:17947",
			Join: []string{"gw-2.local:7947", "192.168.1.12:7947"}, Name: "gw-1", SecretFile: "/etc/gatemq/peer.key",
			GossipInterval: Duration(100 * time.Millisecond), ProbeInterval: Duration(500 * time.Millisecond)},
		PresetSubscriptions: []PresetSubscription{{Client: "*", Topic: "devices/%c/cmd", QoS: 1},
			{Client: "plc-7", Topic: "users/%u/config", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load(full.toml) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoad_Valid(t *testing.T) {
	tests := []struct {
		name    string
		content string
		check   func(c Config) bool
	}{
		{"partial table keeps defaults", "[mqtt]\nmax_qos = 1\n", func(c Config) bool {
			return c.MQTT.MaxQoS == 1 && c.MQTT.MaxInflight == 32 && len(c.Listeners) == 1
		}},
		{"size as integer", "[mqtt]\nmax_packet_size = 4096\n", func(c Config) bool {
			return c.MQTT.MaxPacketSize == 4096
		}},
		{"size as digit string", "[mqtt]\nmax_queued_bytes = \"100000\"\n", func(c Config) bool {
			return c.MQTT.MaxQueuedBytes == 100000
		}},
		{"listener defaults protocol", "[[listener]]\naddress = \":1884\"\n", func(c Config) bool {
			return len(c.Listeners) == 1 && c.Listeners[0] == Listener{Address: ":1884", Protocol: "mqtt", MaxConnectionRate: defaultMaxConnectionRate}
		}},
		{"inline listeners", "listener = [{address = \":1\"}, {address = \":2\", max_connections = 3}]\n", func(c Config) bool {
			return len(c.Listeners) == 2 && c.Listeners[1] == Listener{Address: ":2", Protocol: "mqtt", MaxConnections: 3, MaxConnectionRate: defaultMaxConnectionRate}
		}},
		{"dotted keys", "mqtt.max_qos = 0\nlog.level = \"warn\"\n", func(c Config) bool {
			return c.MQTT.MaxQoS == 0 && c.Log.Level == "warn"
		}},
		{"byte order mark", "\xef\xbb\xbfdata_dir = \"/d\"\n", func(c Config) bool { return c.DataDir == "/d" }},
		{"crlf", "[log]\r\nlevel = \"error\"\r\n", func(c Config) bool { return c.Log.Level == "error" }},
		{"peer group on loopback needs no key", "[peer_group]\nenable = true\nbind = \"127.0.0.1:0\"\njoin = [\"127.0.0.1:7001\", \"[::1]:7002\"]\n", func(c Config) bool {
			return c.PeerGroup.Enable && c.PeerGroup.SecretFile == "" && len(c.PeerGroup.Join) == 2
		}},
		{"peer group with a key and an advertised address", "[peer_group]\nenable = true\nbind = \"[::]:7946\"\nadvertise = \"[fd00::1]:7946\"\nsecret_file = \"/etc/gatemq/peer.key\"\nname = \"gw_1.site-a\"\n", func(c Config) bool {
			return c.PeerGroup.Advertise == "[fd00::1]:7946" && c.PeerGroup.Name == "gw_1.site-a"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

// errorCases are files Load must reject. Each wanted error is "line: key:
// message", the message a substring; Load's errors must match them in order,
// prefixed by the file name. Their contents also seed FuzzParse.
var errorCases = []struct {
	name    string
	content string
	want    []string
}{
	{
		name:    "admin address not loopback, no token file",
		content: "[admin]\naddress = \"0.0.0.0:9883\"\n",
		want:    []string{"1: admin.token_file: required with admin.address", "2: admin.address: is not loopback"},
	},
	{
		name:    "client status retention too short",
		content: "[client_status]\noffline_retention = \"30s\"\n",
		want:    []string{"2: client_status.offline_retention: 30s is out of range (want 0 for ever, or at least 1m0s)"},
	},
	{
		name:    "peer group without a key on the network",
		content: "[peer_group]\nenable = true\nbind = \"0.0.0.0:7946\"\n",
		want:    []string{"1: peer_group.secret_file: required with bind \"0.0.0.0:7946\", which is not loopback"},
	},
	{
		name: "peer group addresses, name and intervals",
		content: `[peer_group]
bind = "gw-1.local:7946"
advertise = "10.0.0.1:0"
join = ["gw-2:7946",
  "gw-3"]
name = "gw 1"
gossip_interval = "1ms"
probe_interval = "2m"
`,
		want: []string{
			`2: peer_group.bind: invalid address "gw-1.local:7946": "gw-1.local" is not an IP address`,
			`3: peer_group.advertise: invalid address "10.0.0.1:0": port "0" is not a number from 1 to 65535`,
			`4: peer_group.join[1]: invalid address "gw-3" (want host:port`,
			`6: peer_group.name: invalid name "gw 1": want letters, digits, '.', '_' or '-'`,
			`7: peer_group.gossip_interval: 1ms is out of range (want 10ms to 10s)`,
			`8: peer_group.probe_interval: 2m is out of range (want 50ms to 1m)`,
		},
	},
	{
		name:    "peer group on IPv6 any address without advertise",
		content: "[peer_group]\nbind = \"[::]:7946\"\nsecret_file = \"/k\"\n",
		want:    []string{`1: peer_group.advertise: required with bind "[::]:7946"`},
	},
	{
		name:    "memory limit too small",
		content: "memory_limit = \"1MiB\"\n",
		want:    []string{"1: memory_limit: 1MiB is out of range (want at least 16777216 bytes)"},
	},
	{
		name:    "gc percent out of range",
		content: "data_dir = \"d\"\ngc_percent = 5000\n",
		want:    []string{"2: gc_percent: 5000 is out of range"},
	},
	{
		name:    "syntax error",
		content: "data_dir = \"/d\"\n[mqtt]\nmax_qos = \n",
		want:    []string{"3: mqtt.max_qos: expected value"},
	},
	{
		name:    "syntax error in header",
		content: "[log]\nlevel = \"info\"\n[mqtt\n",
		want:    []string{"3: expected '.' or ']'"},
	},
	{
		name:    "syntax error after key",
		content: "[log]\nlevel = \"info\"\nfoo\n",
		want:    []string{"3: expected '.' or '='"},
	},
	{
		name:    "syntax error in multi-line string",
		content: "[log]\nlevel = \"\"\"\nabc\\q\n\"\"\"\n",
		want:    []string{"3: invalid escape"},
	},
	{
		name:    "duplicate key",
		content: "[mqtt]\nmax_qos = 1\nmax_qos = 2\n",
		want:    []string{"3: mqtt.max_qos: Key 'mqtt.max_qos' has already been defined"},
	},
	{
		name:    "unknown top-level key",
		content: "data_dir = \"/d\"\ndatadir = \"/e\"\n",
		want:    []string{"2: datadir: unknown key (did you mean data_dir?)"},
	},
	{
		name:    "unknown key in table",
		content: "[log]\nlevel = \"info\"\n\n[mqtt]\nmax_qos = 1\n\nmax_keep_alive = 60\n",
		want:    []string{"7: mqtt.max_keep_alive: unknown key (did you mean max_keepalive?)"},
	},
	{
		name:    "unknown key with wrong case",
		content: "[mqtt]\nMax_QoS = 1\n",
		want:    []string{"2: mqtt.Max_QoS: unknown key (did you mean max_qos?)"},
	},
	{
		name:    "all unknown keys",
		content: "foo = 1\n[mqtt]\nbar = 2\n[log]\nlevel = \"info\"\nbaz = 3\n",
		want: []string{
			"1: foo: unknown key",
			"3: mqtt.bar: unknown key",
			"6: log.baz: unknown key",
		},
	},
	{
		name: "unknown key in second listener",
		content: `[[listener]]
address = ":1883"

[[listener]]
address = ":1884"
max_conections = 10
`,
		want: []string{"6: listener[1].max_conections: unknown key (did you mean max_connections?)"},
	},
	{
		name:    "unknown nested table",
		content: "[mqtt]\nmax_qos = 1\n\n[mqtt.tls]\ncert = \"x.pem\"\nkey = \"x.key\"\n",
		want:    []string{"4: mqtt.tls: unknown key"},
	},
	{
		name:    "unknown implicit table",
		content: "data_dir = \"/d\"\n[cluster.gossip]\nport = 7946\n",
		want:    []string{"2: cluster: unknown key"},
	},
	{
		name:    "unknown table array",
		content: "[[listeners]]\naddress = \":1\"\n",
		want:    []string{"1: listeners: unknown key (did you mean listener?)"},
	},
	{
		name:    "unknown key in inline listener",
		content: "listener = [\n  {address = \":1\"},\n  {address = \":2\", port = 3},\n]\n",
		want:    []string{"3: listener[1].port: unknown key"},
	},
	{
		name:    "wrong type integer",
		content: "[mqtt]\nmax_inflight = \"32\"\n",
		want:    []string{`2: mqtt.max_inflight: expected integer, got string "32"`},
	},
	{
		name:    "wrong type string",
		content: "data_dir = 5\n",
		want:    []string{"1: data_dir: expected string, got integer 5"},
	},
	{
		name:    "wrong type boolean",
		content: "[mqtt]\nretain_available = \"yes\"\n",
		want:    []string{`2: mqtt.retain_available: expected boolean, got string "yes"`},
	},
	{
		name:    "wrong type float",
		content: "[mqtt]\nmax_qos = 1.0\n",
		want:    []string{"2: mqtt.max_qos: expected integer, got float 1"},
	},
	{
		name:    "wrong type table",
		content: "mqtt = 1\n",
		want:    []string{"1: mqtt: expected table, got integer 1"},
	},
	{
		name:    "wrong type listener",
		content: "listener = \":1883\"\n",
		want:    []string{`1: listener: expected array of tables, got string ":1883"`},
	},
	{
		name:    "wrong type in listener",
		content: "[[listener]]\naddress = \":1\"\n[[listener]]\naddress = \":2\"\nmax_connections = \"10\"\n",
		want:    []string{`5: listener[1].max_connections: expected integer, got string "10"`},
	},
	{
		name:    "duration as integer",
		content: "[mqtt]\nconnect_timeout = 10\n",
		want:    []string{`2: mqtt.connect_timeout: expected a duration string such as "30s", got integer 10`},
	},
	{
		name:    "invalid duration",
		content: "# comment\n[mqtt]\nsys_interval = \"10 parsecs\"\n",
		want:    []string{`3: mqtt.sys_interval: invalid duration "10 parsecs"`},
	},
	{
		name:    "invalid size",
		content: "[mqtt]\n\nmax_packet_size = \"64 megs\"\n",
		want:    []string{`3: mqtt.max_packet_size: invalid size "64 megs": unknown unit "megs"`},
	},
	{
		name:    "negative size",
		content: "[mqtt]\nmax_queued_bytes = -1\n",
		want:    []string{"2: mqtt.max_queued_bytes: invalid size -1: negative"},
	},
	{
		name:    "size as boolean",
		content: "[mqtt]\nmax_queued_bytes = true\n",
		want:    []string{`2: mqtt.max_queued_bytes: expected a size such as "64MiB" or an integer, got boolean true`},
	},
	{
		name:    "out of range",
		content: "[mqtt]\nmax_qos = 3\nmax_keepalive = 70000\nmax_inflight = 0\nmax_packet_size = \"512MiB\"\nmax_queued_messages = 0\n",
		want: []string{
			"2: mqtt.max_qos: 3 is out of range (want 0 to 2)",
			"3: mqtt.max_keepalive: 70000 is out of range (want 0 to 65535)",
			"4: mqtt.max_inflight: 0 is out of range (want 1 to 65535)",
			"5: mqtt.max_packet_size: 512MiB is out of range (want 16 to 268435455 bytes)",
			"6: mqtt.max_queued_messages: 0 is out of range",
		},
	},
	{
		name:    "invalid enum",
		content: "[log]\nlevel = \"verbose\"\n",
		want:    []string{`2: log.level: invalid value "verbose" (want "debug", "info", "warn" or "error")`},
	},
	{
		name: "bad address",
		content: `data_dir = "/d"

[[listener]]
address = ":1883"

[[listener]]
address = "foo"
`,
		want: []string{`7: listener[1].address: invalid address "foo": missing port`},
	},
	{
		name:    "missing address",
		content: "[[listener]]\naddress = \":1\"\n\n[[listener]]\nmax_connections = 5\n",
		want:    []string{"4: listener[1].address: missing"},
	},
	{
		name: "duplicate listener address",
		content: `[[listener]]
address = "0.0.0.0:1883"
[[listener]]
address = "127.0.0.1:1884"
[[listener]]
address = "0.0.0.0:1883"
`,
		want: []string{`6: listener[2].address: duplicate address "0.0.0.0:1883" (also listener[0])`},
	},
	{
		name:    "wss is not a protocol",
		content: "[[listener]]\naddress = \":8080\"\nprotocol = \"wss\"\n",
		want:    []string{`3: listener[0].protocol: unknown protocol "wss": for TLS set tls_cert and tls_key with protocol "mqtt" or "ws"`},
	},
	{
		name:    "tls_cert without tls_key",
		content: "[[listener]]\naddress = \":8883\"\ntls_cert = \"/etc/gatemq/server.pem\"\nrequire_certificate = true\n",
		want: []string{
			"3: listener[0].tls_cert: tls_key is missing",
			"4: listener[0].require_certificate: needs client_ca",
		},
	},
	{
		name:    "client_ca without TLS",
		content: "[[listener]]\naddress = \":1883\"\n\nclient_ca = \"/etc/gatemq/ca.pem\"\n",
		want:    []string{"4: listener[0].client_ca: needs tls_cert and tls_key"},
	},
	{
		name:    "allow_anonymous not a boolean",
		content: "[[listener]]\naddress = \":1883\"\nallow_anonymous = \"yes\"\n",
		want:    []string{`3: listener[0].allow_anonymous: expected boolean, got string "yes"`},
	},
	{
		name:    "no listeners",
		content: "data_dir = \"/d\"\nlistener = []\n",
		want:    []string{"2: listener: at least one listener is required"},
	},
	{
		name:    "bad listener element",
		content: "listener = [\n{address = \":1\"},\n7,\n]\n",
		want:    []string{"1: listener[1]: expected table, got integer 7"},
	},
	{
		name: "every problem at once in file order",
		content: `data_dir = "/d"
colour = "blue"

[mqtt]
max_qos = 9
sys_interval = "soon"

[[listener]]
address = "localhost"
protocol = "websocket"
`,
		want: []string{
			"2: colour: unknown key",
			"5: mqtt.max_qos: 9 is out of range",
			`6: mqtt.sys_interval: invalid duration "soon"`,
			`9: listener[0].address: invalid address "localhost"`,
			`10: listener[0].protocol: unknown protocol "websocket" (want "mqtt" or "ws")`,
		},
	},
	{
		name:    "quoted keys",
		content: "[mqtt]\n\"max qos\" = 1\n",
		want:    []string{`2: mqtt."max qos": unknown key`},
	},
	{
		name:    "lines after multi-line strings",
		content: "data_dir = \"\"\"\n/a\n/b\"\"\"\nlistener = [ # the listeners\n  { address = '''\n:1\n''' },\n\n  { address = \":2\", x = 1 },\n]\n",
		want: []string{
			"5: listener[0].address: invalid address",
			"9: listener[1].x: unknown key",
		},
	},
}

func TestLoad_Errors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) { checkLoadErrors(t, tc.content, tc.want) })
	}
}

// checkLoadErrors loads content and checks that it fails with the errors
// in want, each "line: key: message", in order.
func checkLoadErrors(t *testing.T, content string, want []string) {
	t.Helper()
	path := writeConfig(t, content)
	c, err := Load(path)
	if err == nil {
		t.Fatalf("Load succeeded: %+v", c)
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Errorf("Load returned a non-zero Config with an error")
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("Load: %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		// "line: key: message" → "path:line: key: " prefix and message.
		prefix, msg, _ := strings.Cut(w, ": ")
		if k, m, ok := strings.Cut(msg, ": "); ok && !strings.Contains(k, " ") {
			prefix, msg = prefix+": "+k, m
		}
		prefix = path + ":" + prefix + ": "
		if !strings.HasPrefix(got[i], prefix) || !strings.Contains(got[i][len(prefix):], msg) {
			t.Errorf("error %d = %q\nwant prefix %q and %q", i, got[i], prefix, msg)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line == 0 {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
}

func TestLoad_DeepNestingLosesLines(t *testing.T) {
	// Past maxScanDepth the key scan gives up: errors keep file and key
	// but lose the line, rather than costing quadratic time.
	src := "data_dir = 1\nx = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	_, err := Parse(strings.NewReader(src), "deep.toml")
	want := "deep.toml: data_dir: expected string, got integer 1\ndeep.toml: x: unknown key"
	if err == nil || err.Error() != want {
		t.Fatalf("Parse = %v, want %q", err, want)
	}
}

func TestLoad_UnknownKeyIs(t *testing.T) {
	_, err := Parse(strings.NewReader("[mqtt]\nfoo = 1\nbar = 2\n"), "x.toml")
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("errors.Is(%v, ErrUnknownKey) = false", err)
	}
}

func TestLoad_MissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(missing) = %v, want a not-exist error naming the file", err)
	}
}

func TestParse_Name(t *testing.T) {
	_, err := Parse(strings.NewReader("\n\nfoo = 1\n"), "stdin")
	if err == nil || err.Error() != "stdin:3: foo: unknown key" {
		t.Fatalf("Parse = %v", err)
	}
	_, err = Parse(strings.NewReader("foo = 1\n"), "")
	if err == nil || err.Error() != "line 1: foo: unknown key" {
		t.Fatalf("Parse without name = %v", err)
	}
}

func TestPrint_RoundTrip(t *testing.T) {
	full, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	odd := Default()
	odd.DataDir = "C:\\gate \"mq\"\n\x7f é"
	odd.MQTT.MaxPacketSize = 1000
	odd.MQTT.SessionExpiryInterval = Duration(90*time.Minute + 500*time.Millisecond)
	odd.Listeners = []Listener{{Address: "[fe80::1%eth0]:1883", Protocol: "mqtt", MaxConnections: 1}, {Address: ":0", Protocol: "mqtt"}}

	for name, c := range map[string]Config{"default": Default(), "full": full, "odd": odd} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Print(&buf, c); err != nil {
				t.Fatal(err)
			}
			got, err := Parse(&buf, "printed")
			if err != nil {
				t.Fatalf("Parse(Print(c)): %v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("Parse(Print(c)) =\n%+v\nwant\n%+v", got, c)
			}
		})
	}
}

func TestPrint_Golden(t *testing.T) {
	var buf bytes.Buffer
	if err := Print(&buf, Default()); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/print.golden"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("Print(Default()) =\n%s\nwant (go test -update to accept)\n%s", buf.Bytes(), want)
	}
}
