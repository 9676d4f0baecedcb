package conf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConfig_ValidateLimits checks the ranges of the limit keys: each
// value out of range is an error naming its key, and the edges pass.
func TestConfig_ValidateLimits(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string // "" for valid
		wantErr string
	}{
		{"max connections unlimited", func(c *Config) { c.MQTT.MaxConnections = 0 }, "", ""},
		{"max connections negative", func(c *Config) { c.MQTT.MaxConnections = -1 }, "mqtt.max_connections", "-1 is out of range (want at least 0)"},
		{"topic levels 1", func(c *Config) { c.MQTT.MaxTopicLevels = 1 }, "", ""},
		{"topic levels 65535", func(c *Config) { c.MQTT.MaxTopicLevels = 65535 }, "", ""},
		{"topic levels 0", func(c *Config) { c.MQTT.MaxTopicLevels = 0 }, "mqtt.max_topic_levels", "0 is out of range (want 1 to 65535)"},
		{"topic levels 65536", func(c *Config) { c.MQTT.MaxTopicLevels = 65536 }, "mqtt.max_topic_levels", "out of range"},
		{"subscriptions unlimited", func(c *Config) { c.MQTT.MaxSubscriptions = 0 }, "", ""},
		{"subscriptions negative", func(c *Config) { c.MQTT.MaxSubscriptions = -1 }, "mqtt.max_subscriptions", "out of range"},
		{"user properties 0", func(c *Config) { c.MQTT.MaxUserProperties = 0 }, "mqtt.max_user_properties", "0 is out of range (want 1 to 65535)"},
		{"user properties 65536", func(c *Config) { c.MQTT.MaxUserProperties = 65536 }, "mqtt.max_user_properties", "out of range"},
		{"await rel 1s", func(c *Config) { c.MQTT.AwaitRelTimeout = Duration(time.Second) }, "", ""},
		{"await rel 0", func(c *Config) { c.MQTT.AwaitRelTimeout = 0 }, "mqtt.await_rel_timeout", "0s is out of range (want at least 1s)"},
		{"await rel short", func(c *Config) { c.MQTT.AwaitRelTimeout = Duration(time.Millisecond) }, "mqtt.await_rel_timeout", "out of range"},
		{"connection rate unlimited", func(c *Config) { c.Listeners[0].MaxConnectionRate = 0 }, "", ""},
		{"connection rate negative", func(c *Config) { c.Listeners[0].MaxConnectionRate = -1 }, "listener[0].max_connection_rate", "out of range"},
		{"connection rate huge", func(c *Config) { c.Listeners[0].MaxConnectionRate = 1_000_001 }, "listener[0].max_connection_rate", "want 0 to 1000000"},
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
			if !errors.As(err, &e) || e.Key != tc.wantKey || !strings.Contains(e.Err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want key %q and error containing %q", err, tc.wantKey, tc.wantErr)
			}
		})
	}
}

// TestLoad_ListenerTableGetsDefaultRate: a [[listener]] table in a file
// gets the default connection rate, and can turn it off.
func TestLoad_ListenerTableGetsDefaultRate(t *testing.T) {
	c, err := Load(writeConfig(t, "[[listener]]\naddress = \":1\"\n\n[[listener]]\naddress = \":2\"\nmax_connection_rate = 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Listeners[0].MaxConnectionRate; r != defaultMaxConnectionRate {
		t.Fatalf("listener[0].max_connection_rate = %d, want the default %d", r, defaultMaxConnectionRate)
	}
	if r := c.Listeners[1].MaxConnectionRate; r != 0 {
		t.Fatalf("listener[1].max_connection_rate = %d, want 0", r)
	}
}
