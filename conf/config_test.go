package conf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir", c.DataDir, "./data"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"mqtt.max_packet_size", c.MQTT.MaxPacketSize, Size(1 << 20)},
		{"mqtt.max_keepalive", c.MQTT.MaxKeepalive, 65535},
		{"mqtt.session_expiry_interval", c.MQTT.SessionExpiryInterval.D(), 2 * time.Hour},
		{"mqtt.max_inflight", c.MQTT.MaxInflight, 32},
		{"mqtt.max_queued_messages", c.MQTT.MaxQueuedMessages, 1000},
		{"mqtt.max_queued_bytes", c.MQTT.MaxQueuedBytes, Size(0)},
		{"mqtt.queue_qos0_messages", c.MQTT.QueueQoS0Messages, false},
		{"mqtt.retain_available", c.MQTT.RetainAvailable, true},
		{"mqtt.max_topic_alias", c.MQTT.MaxTopicAlias, 10},
		{"mqtt.max_qos", c.MQTT.MaxQoS, 2},
		{"mqtt.sys_interval", c.MQTT.SysInterval.D(), 10 * time.Second},
		{"mqtt.connect_timeout", c.MQTT.ConnectTimeout.D(), 10 * time.Second},
		{"mqtt.max_client_id_len", c.MQTT.MaxClientIDLen, 65535},
		{"len(listener)", len(c.Listeners), 1},
		{"listener[0].address", c.Listeners[0].Address, "127.0.0.1:1883"},
		{"listener[0].protocol", c.Listeners[0].Protocol, "mqtt"},
		{"listener[0].max_connections", c.Listeners[0].MaxConnections, 0},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}

	// Each call returns its own listener list.
	c.Listeners[0].Address = "changed:1"
	if Default().Listeners[0].Address != "127.0.0.1:1883" {
		t.Error("Default shares its listener list between calls")
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string // "" for valid
		wantErr string
	}{
		{"defaults", func(c *Config) {}, "", ""},
		{"empty data_dir", func(c *Config) { c.DataDir = "" }, "data_dir", "must not be empty"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", `invalid value "trace" (want "debug", "info", "warn" or "error")`},
		{"log level case", func(c *Config) { c.Log.Level = "INFO" }, "log.level", `invalid value "INFO"`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format", `invalid value "logfmt"`},
		{"packet size min", func(c *Config) { c.MQTT.MaxPacketSize = 16 }, "", ""},
		{"packet size max", func(c *Config) { c.MQTT.MaxPacketSize = 268435455 }, "", ""},
		{"packet size small", func(c *Config) { c.MQTT.MaxPacketSize = 15 }, "mqtt.max_packet_size", "15 is out of range (want 16 to 268435455 bytes)"},
		{"packet size large", func(c *Config) { c.MQTT.MaxPacketSize = 256 << 20 }, "mqtt.max_packet_size", "256MiB is out of range"},
		{"keepalive", func(c *Config) { c.MQTT.MaxKeepalive = 65536 }, "mqtt.max_keepalive", "65536 is out of range (want 0 to 65535)"},
		{"keepalive negative", func(c *Config) { c.MQTT.MaxKeepalive = -1 }, "mqtt.max_keepalive", "out of range"},
		{"session expiry zero", func(c *Config) { c.MQTT.SessionExpiryInterval = 0 }, "", ""},
		{"session expiry negative", func(c *Config) { c.MQTT.SessionExpiryInterval = Duration(-time.Second) }, "mqtt.session_expiry_interval", "-1s is out of range"},
		{"session expiry uint32", func(c *Config) { c.MQTT.SessionExpiryInterval = Duration(1 << 32 * time.Second) }, "mqtt.session_expiry_interval", "out of range"},
		{"inflight zero", func(c *Config) { c.MQTT.MaxInflight = 0 }, "mqtt.max_inflight", "0 is out of range (want 1 to 65535)"},
		{"inflight large", func(c *Config) { c.MQTT.MaxInflight = 65536 }, "mqtt.max_inflight", "out of range"},
		{"queued zero", func(c *Config) { c.MQTT.MaxQueuedMessages = 0 }, "mqtt.max_queued_messages", "0 is out of range"},
		{"queued bytes negative", func(c *Config) { c.MQTT.MaxQueuedBytes = -1 }, "mqtt.max_queued_bytes", "out of range"},
		{"topic alias", func(c *Config) { c.MQTT.MaxTopicAlias = 70000 }, "mqtt.max_topic_alias", "out of range"},
		{"qos", func(c *Config) { c.MQTT.MaxQoS = 3 }, "mqtt.max_qos", "3 is out of range (want 0 to 2)"},
		{"sys interval off", func(c *Config) { c.MQTT.SysInterval = 0 }, "", ""},
		{"sys interval short", func(c *Config) { c.MQTT.SysInterval = Duration(time.Millisecond) }, "mqtt.sys_interval", "1ms is out of range (want at least 1s)"},
		{"connect timeout", func(c *Config) { c.MQTT.ConnectTimeout = 0 }, "mqtt.connect_timeout", "0s is out of range (want more than 0s)"},
		{"client id short", func(c *Config) { c.MQTT.MaxClientIDLen = 22 }, "mqtt.max_client_id_len", "22 is out of range (want 23 to 65535)"},
		{"deny_subscribe bad filter", func(c *Config) { c.MQTT.DenySubscribe = []string{"#", "a/#/b"} }, "mqtt.deny_subscribe[1]", `"#" must be the last level`},
		{"deny_subscribe empty", func(c *Config) { c.MQTT.DenySubscribe = []string{""} }, "mqtt.deny_subscribe[0]", "empty topic filter"},
		{"no listeners", func(c *Config) { c.Listeners = nil }, "listener", "at least one listener is required"},
		{"address empty", func(c *Config) { c.Listeners[0].Address = "" }, "listener[0].address", "missing"},
		{"address no port", func(c *Config) { c.Listeners[0].Address = "foo" }, "listener[0].address", `invalid address "foo": missing port`},
		{"address bad port", func(c *Config) { c.Listeners[0].Address = "foo:mqtt" }, "listener[0].address", `port "mqtt" is not a number`},
		{"address big port", func(c *Config) { c.Listeners[0].Address = ":65536" }, "listener[0].address", "0 to 65535"},
		{"address all interfaces", func(c *Config) { c.Listeners[0].Address = ":1883" }, "", ""},
		{"address ipv6", func(c *Config) { c.Listeners[0].Address = "[::]:1883" }, "", ""},
		{"address ipv6 unbracketed", func(c *Config) { c.Listeners[0].Address = "::1:1883" }, "listener[0].address", "too many colons"},
		{"protocol ws", func(c *Config) { c.Listeners[0].Protocol = "ws" }, "", ""},
		{"protocol wss", func(c *Config) { c.Listeners[0].Protocol = "wss" }, "listener[0].protocol", `for TLS set tls_cert and tls_key`},
		{"protocol unknown", func(c *Config) { c.Listeners[0].Protocol = "amqp" }, "listener[0].protocol", `unknown protocol "amqp" (want "mqtt" or "ws")`},
		{"max connections", func(c *Config) { c.Listeners[0].MaxConnections = -1 }, "listener[0].max_connections", "out of range"},
		{"duplicate address", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Address: "127.0.0.1:01883", Protocol: "mqtt"})
		}, "listener[1].address", `duplicate address "127.0.0.1:01883" (also listener[0])`},
		{"port 0 twice", func(c *Config) {
			c.Listeners = []Listener{{Address: "127.0.0.1:0", Protocol: "mqtt"}, {Address: "127.0.0.1:0", Protocol: "mqtt"}}
		}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate() = %v, want an *Error", err)
			}
			if e.Key != tc.wantKey || !strings.Contains(e.Err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %q, want key %q and error containing %q", err, tc.wantKey, tc.wantErr)
			}
			if want := tc.wantKey + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Validate() = %q, want prefix %q", err, want)
			}
		})
	}
}

func TestConfig_ValidateAll(t *testing.T) {
	c := Default()
	c.DataDir = ""
	c.MQTT.MaxQoS = 5
	c.Listeners[0].Protocol = "wss"
	err := c.Validate()
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		keys = append(keys, e.(*Error).Key)
	}
	if got, want := strings.Join(keys, " "), "data_dir mqtt.max_qos listener[0].protocol"; got != want {
		t.Fatalf("error keys = %q, want %q", got, want)
	}
}

func TestConfig_ApplyOverrides(t *testing.T) {
	two := Default()
	two.Listeners = append(two.Listeners, Listener{Address: ":1884", Protocol: "mqtt"})
	tests := []struct {
		name            string
		c               Config
		listen, dataDir string
		wantAddrs       string
		wantDataDir     string
	}{
		{"none", Default(), "", "", "127.0.0.1:1883", "./data"},
		{"listen", Default(), ":1883", "", ":1883", "./data"},
		{"data dir", Default(), "", "/tmp/x", "127.0.0.1:1883", "/tmp/x"},
		{"both", Default(), "0.0.0.0:1999", "/d", "0.0.0.0:1999", "/d"},
		{"first of two", two, "10.0.0.1:1883", "", "10.0.0.1:1883 :1884", "./data"},
		{"no listeners", Config{DataDir: "x"}, ":1", "", ":1", "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.ApplyOverrides(tc.listen, tc.dataDir)
			var addrs []string
			for _, l := range c.Listeners {
				addrs = append(addrs, l.Address)
				if l.Protocol != "mqtt" {
					t.Errorf("listener %s has protocol %q", l.Address, l.Protocol)
				}
			}
			if got := strings.Join(addrs, " "); got != tc.wantAddrs {
				t.Errorf("addresses = %q, want %q", got, tc.wantAddrs)
			}
			if c.DataDir != tc.wantDataDir {
				t.Errorf("DataDir = %q, want %q", c.DataDir, tc.wantDataDir)
			}
		})
	}
	// The original's listener list is left alone.
	if two.Listeners[0].Address != "127.0.0.1:1883" {
		t.Error("ApplyOverrides changed the listener list of a copy")
	}
}
