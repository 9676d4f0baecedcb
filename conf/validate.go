package conf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Limits checked by Validate.
const (
	minPacketSize = 16        // fixed header plus a minimal CONNECT
	maxPacketSize = 268435455 // largest remaining length plus header the varint encodes, [MQTT-1.5.5]
	maxUint16     = 65535
	minClientID   = 23 // a server must accept client IDs of 1 to 23 bytes, [MQTT-3.1.3-5]
	maxExpiry     = Duration(math.MaxUint32 * time.Second)

	minMemoryLimit = 16 << 20 // below it the collector would run almost without pause
	minGCPercent   = 25       // below it the collector runs almost without pause
	maxGCPercent   = 1000     // above it an idle broker's heap could grow tenfold
)

// Validate reports whether c is usable: values in range, known enums, at
// least one listener, valid and distinct listener addresses. It returns nil,
// one *Error, or several *Error joined with errors.Join; their Key fields name
// the offending keys. Load and Parse call it already; call it again after
// ApplyOverrides.
func (c *Config) Validate() error { return joinErrors(c.validate()) }

// validate returns every problem, in field order.
func (c *Config) validate() []*Error {
	var v validator
	if c.DataDir == "" {
		v.add("data_dir", errors.New("must not be empty"))
	}
	if c.MemoryLimit != 0 {
		v.sizeRange("memory_limit", c.MemoryLimit, minMemoryLimit, math.MaxInt64)
	}
	if c.GCPercent != 0 {
		v.intRange("gc_percent", int64(c.GCPercent), minGCPercent, maxGCPercent)
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")

	m := &c.MQTT
	v.sizeRange("mqtt.max_packet_size", m.MaxPacketSize, minPacketSize, maxPacketSize)
	v.intRange("mqtt.max_keepalive", int64(m.MaxKeepalive), 0, maxUint16)
	v.durationRange("mqtt.session_expiry_interval", m.SessionExpiryInterval, 0, maxExpiry)
	v.intRange("mqtt.max_inflight", int64(m.MaxInflight), 1, maxUint16)
	v.intRange("mqtt.max_queued_messages", int64(m.MaxQueuedMessages), 1, math.MaxInt32)
	v.sizeRange("mqtt.max_queued_bytes", m.MaxQueuedBytes, 0, math.MaxInt64)
	v.intRange("mqtt.max_topic_alias", int64(m.MaxTopicAlias), 0, maxUint16)
	v.intRange("mqtt.max_qos", int64(m.MaxQoS), 0, 2)
	if m.SysInterval != 0 {
		v.durationRange("mqtt.sys_interval", m.SysInterval, Duration(time.Second), math.MaxInt64)
	}
	v.durationRange("mqtt.connect_timeout", m.ConnectTimeout, 1, math.MaxInt64)
	v.intRange("mqtt.max_client_id_len", int64(m.MaxClientIDLen), minClientID, maxUint16)
	for i, f := range m.DenySubscribe {
		if err := checkFilter(f); err != nil {
			v.add("mqtt.deny_subscribe["+strconv.Itoa(i)+"]", err)
		}
	}
	v.limits(m)

	v.durable(c.DurableSessions, c.DurableStorage)
	v.admin(c.Admin)
	v.clientStatus(c.ClientStatus)
	v.peerGroup(c.PeerGroup)
	v.offline(c.Offline, c.DurableStorage.MessageRetentionPeriod)
	v.presets(c.PresetSubscriptions)
	v.archive(c.Archive)

	if len(c.Listeners) == 0 {
		v.add("listener", errors.New("at least one listener is required"))
	}
	seen := make(map[string]int) // normalised address → listener index
	for i, l := range c.Listeners {
		key := "listener[" + strconv.Itoa(i) + "]"
		if addr, err := normaliseAddress(l.Address); err != nil {
			v.add(key+".address", err)
		} else if addr != "" {
			if j, dup := seen[addr]; dup {
				v.add(key+".address", fmt.Errorf("duplicate address %q (also listener[%d])", l.Address, j))
			} else {
				seen[addr] = i
			}
		}
		switch l.Protocol {
		case "mqtt", "ws":
		case "wss", "mqtts", "tls", "ssl":
			v.add(key+".protocol", fmt.Errorf(`unknown protocol %q: for TLS set tls_cert and tls_key with protocol "mqtt" or "ws"`, l.Protocol))
		default:
			v.add(key+".protocol", fmt.Errorf(`unknown protocol %q (want "mqtt" or "ws")`, l.Protocol))
		}
		v.listenerAuth(key, &l)
		v.intRange(key+".max_connections", int64(l.MaxConnections), 0, math.MaxInt64)
		v.intRange(key+".max_connection_rate", int64(l.MaxConnectionRate), 0, maxConnectionRate)
	}
	return v.errs
}

// normaliseAddress checks a listener address and returns it in a form that
// makes equal addresses compare equal, or "" for port 0, which never
// conflicts (every listener gets its own free port).
func normaliseAddress(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("missing (want host:port, such as \"0.0.0.0:1883\")")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return "", fmt.Errorf("invalid address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("invalid address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if p == 0 {
		return "", nil
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// validator collects errors.
type validator struct{ errs []*Error }

func (v *validator) add(key string, err error) {
	v.errs = append(v.errs, &Error{Key: key, Err: err})
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, fmt.Errorf("invalid value %q (want %s)", val, orList(allowed)))
}

func (v *validator) intRange(key string, n, lo, hi int64) {
	switch {
	case n < lo && hi == math.MaxInt64:
		v.add(key, fmt.Errorf("%d is out of range (want at least %d)", n, lo))
	case n < lo || n > hi:
		v.add(key, fmt.Errorf("%d is out of range (want %d to %d)", n, lo, hi))
	}
}

func (v *validator) sizeRange(key string, n, lo, hi Size) {
	switch {
	case n < lo && hi == math.MaxInt64:
		v.add(key, fmt.Errorf("%s is out of range (want at least %d bytes)", n, lo))
	case n < lo || n > hi:
		v.add(key, fmt.Errorf("%s is out of range (want %d to %d bytes)", n, lo, hi))
	}
}

func (v *validator) durationRange(key string, d, lo, hi Duration) {
	switch {
	case d < lo && lo == 1 && hi == math.MaxInt64:
		v.add(key, fmt.Errorf("%s is out of range (want more than 0s)", d))
	case d < lo && hi == math.MaxInt64:
		v.add(key, fmt.Errorf("%s is out of range (want at least %s)", d, lo))
	case d < lo || d > hi:
		v.add(key, fmt.Errorf("%s is out of range (want %s to %s)", d, lo, hi))
	}
}

// orList quotes words and joins them: `"a", "b" or "c"`.
func orList(words []string) string {
	s := ""
	for i, w := range words {
		switch {
		case i == 0:
		case i == len(words)-1:
			s += " or "
		default:
			s += ", "
		}
		s += strconv.Quote(w)
	}
	return s
}

// checkFilter checks the shape of an MQTT topic filter: not empty, "+"
// and "#" each a whole level, "#" only last.
func checkFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("invalid topic filter %q: \"#\" must be the last level", f)
		case l != "+" && l != "#" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("invalid topic filter %q: a wildcard must be a whole level", f)
		}
	}
	return nil
}
