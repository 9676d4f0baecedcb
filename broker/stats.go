package broker

import "sync/atomic"

// stats are the broker-wide counters behind $SYS and Stats.
type stats struct {
	bytesRecv    atomic.Uint64
	bytesSent    atomic.Uint64
	packetsRecv  atomic.Uint64
	packetsSent  atomic.Uint64
	publishRecv  atomic.Uint64
	publishSent  atomic.Uint64
	dropped      atomic.Uint64 // deliveries refused by full queues
	tooLarge     atomic.Uint64 // deliveries over the client's Maximum Packet Size
	connected    atomic.Int64
	maxConnected atomic.Int64
	connsTotal   atomic.Uint64
	byQoS        qosStats // PUBLISH and payload bytes by QoS; see stats_qos.go

	// Writes of acknowledgements on the store's goroutine (signalStored),
	// and those the socket's full buffer cut short; for tests.
	acksDirect      atomic.Uint64
	acksDirectShort atomic.Uint64

	// Refusals and drops by the limits of limits.go.
	connRefused     atomic.Uint64 // over max_connections, server or listener
	connRateLimited atomic.Uint64 // over a listener's max_connection_rate
	connectTimeouts atomic.Uint64 // no CONNECT within connect_timeout
	relExpired      atomic.Uint64 // inbound QoS 2 dropped after await_rel_timeout
	subsOverQuota   atomic.Uint64 // filters refused by max_subscriptions
	topicTooDeep    atomic.Uint64 // topics and filters refused by max_topic_levels
	userPropsOver   atomic.Uint64 // packets refused by max_user_properties
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Uptime             float64 // seconds
	ClientsConnected   int
	ClientsMaximum     int
	Sessions           int // connected and disconnected
	Subscriptions      int
	Retained           int
	BytesReceived      uint64
	BytesSent          uint64
	PacketsReceived    uint64
	PacketsSent        uint64
	PublishReceived    uint64
	PublishSent        uint64
	PublishDropped     uint64
	ConnectionsTotal   uint64
	PublishTooLargeOut uint64
	Limits             LimitStats
}

// LimitStats counts what the broker's limits refused or dropped, for a
// metrics endpoint; full queues are Stats.PublishDropped.
type LimitStats struct {
	ConnectionsRefused     uint64 // over max_connections (server or listener), closed at accept
	ConnectionsRateLimited uint64 // over a listener's max_connection_rate, closed at accept
	ConnectTimeouts        uint64 // closed for no CONNECT within connect_timeout
	AwaitRelExpired        uint64 // inbound QoS 2 messages dropped after await_rel_timeout without PUBREL
	SubscriptionsRefused   uint64 // filters refused (SUBACK 0x97) by max_subscriptions
	TopicLevelsExceeded    uint64 // PUBLISH, will topics and filters refused by max_topic_levels
	UserPropertiesExceeded uint64 // packets refused by max_user_properties
}

func (st *stats) limits() LimitStats {
	return LimitStats{
		ConnectionsRefused:     st.connRefused.Load(),
		ConnectionsRateLimited: st.connRateLimited.Load(),
		ConnectTimeouts:        st.connectTimeouts.Load(),
		AwaitRelExpired:        st.relExpired.Load(),
		SubscriptionsRefused:   st.subsOverQuota.Load(),
		TopicLevelsExceeded:    st.topicTooDeep.Load(),
		UserPropertiesExceeded: st.userPropsOver.Load(),
	}
}

func (st *stats) connOpened() {
	n := st.connected.Add(1)
	st.connsTotal.Add(1)
	for {
		m := st.maxConnected.Load()
		if n <= m || st.maxConnected.CompareAndSwap(m, n) {
			return
		}
	}
}
