package broker

import "sync/atomic"

// qosStats counts PUBLISH packets and their payload bytes by QoS, for
// the metrics.
type qosStats struct {
	msgsIn, msgsOut   [3]atomic.Uint64
	bytesIn, bytesOut [3]atomic.Uint64
}

// in counts a PUBLISH received.
func (q *qosStats) in(qos byte, payload int) {
	qos = min(qos, 2)
	q.msgsIn[qos].Add(1)
	q.bytesIn[qos].Add(uint64(payload))
}

// out counts a PUBLISH sent.
func (q *qosStats) out(qos byte, payload int) {
	qos = min(qos, 2)
	q.msgsOut[qos].Add(1)
	q.bytesOut[qos].Add(uint64(payload))
}

// QoSStats counts PUBLISH packets and their payload bytes, indexed by
// QoS 0, 1, 2. Received counts every PUBLISH read, refused ones
// included; sent counts every PUBLISH written, resends included.
type QoSStats struct {
	MessagesReceived     [3]uint64
	MessagesSent         [3]uint64
	PayloadBytesReceived [3]uint64
	PayloadBytesSent     [3]uint64
}

// QoSStats returns a snapshot of the counters by QoS. It is safe for
// concurrent use.
func (s *Server) QoSStats() QoSStats {
	q := &s.stats.byQoS
	var out QoSStats
	for i := range 3 {
		out.MessagesReceived[i] = q.msgsIn[i].Load()
		out.MessagesSent[i] = q.msgsOut[i].Load()
		out.PayloadBytesReceived[i] = q.bytesIn[i].Load()
		out.PayloadBytesSent[i] = q.bytesOut[i].Load()
	}
	return out
}
