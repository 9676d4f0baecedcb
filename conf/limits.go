package conf

import (
	"math"
	"time"
)

// defaultMaxConnectionRate is the default of listener[i].max_connection_rate:
// new connections a second from one address. It is generous for devices
// behind one NAT reconnecting together, and stops a client reconnecting
// in a tight loop from costing the broker thousands of handshakes a
// second.
const defaultMaxConnectionRate = 50

// maxConnectionRate bounds listener[i].max_connection_rate.
const maxConnectionRate = 1_000_000

// limits checks the [mqtt] keys of the limits against hostile and broken
// clients.
func (v *validator) limits(m *MQTT) {
	v.intRange("mqtt.max_connections", int64(m.MaxConnections), 0, math.MaxInt64)
	v.intRange("mqtt.max_topic_levels", int64(m.MaxTopicLevels), 1, maxUint16)
	v.intRange("mqtt.max_subscriptions", int64(m.MaxSubscriptions), 0, math.MaxInt32)
	v.intRange("mqtt.max_user_properties", int64(m.MaxUserProperties), 1, maxUint16)
	v.durationRange("mqtt.await_rel_timeout", m.AwaitRelTimeout, Duration(time.Second), math.MaxInt64)
}
