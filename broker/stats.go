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
