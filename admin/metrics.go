package admin

import (
	"fmt"
	"io"
	rtmetrics "runtime/metrics"

	"gatemq/boltstore"
	"gatemq/gossip"
)

// metrics renders /metrics in the Prometheus text format (prom.go), every
// family with its HELP and TYPE. The broker's and the store's counters are
// read at each scrape (they are atomics already: copying them into other
// counters on every event would only cost the hot path); the commit
// histograms are fed by the store's commit observer.
//
// No metrics library: github.com/VictoriaMetrics/metrics, used before,
// has le-bucket histograms only from v1.38, whose package initialisation
// logs a line to stderr, in every gatemq command, on hosts without
// cgroup v2 pressure files; and its HELP lines carry no text. What gatemq
// needs of one is prom.go.
type metrics struct {
	b       Broker
	st      Store   // nil without a store
	peers   Peers   // nil without a peer group
	ar      Archive // nil without a message archive
	commitS *histogram
	batch   *histogram
}

func newMetrics(b Broker, st Store, peers Peers, ar Archive) *metrics {
	m := &metrics{b: b, st: st, peers: peers, ar: ar}
	if st != nil {
		m.commitS = newHistogram(commitSecondsBounds)
		m.batch = newHistogram(batchSizeBounds)
		st.ObserveCommits(m.observe)
	}
	return m
}

// observe records a commit; it runs on the store's writer goroutine.
func (m *metrics) observe(c boltstore.Commit) {
	m.commitS.observe(c.Duration.Seconds())
	m.batch.observe(float64(c.Records))
}

func (m *metrics) write(w io.Writer) {
	writeBroker(w, m.b)
	writeRuntime(w)
	if m.st != nil {
		writeStore(w, m.st)
		m.commitS.write(w, "gatemq_store_commit_duration_seconds", "Time of each message commit to the durable store, fsync included.")
		m.batch.write(w, "gatemq_store_commit_batch_size", "Records (messages and tombstones) per message commit.")
	}
	if m.peers != nil {
		writePeers(w, m.peers)
	}
	if m.ar != nil {
		writeArchive(w, m.ar)
	}
}

// runtimeSamples are the Go runtime's figures behind gc_percent and
// memory_limit, so that their effect on a gateway can be watched.
var runtimeSamples = []struct{ metric, name, help string }{
	{"/gc/gogc:percent", "gatemq_go_gc_percent", "The garbage collector's target in use (gc_percent, GOGC)."},
	{"/gc/gomemlimit:bytes", "gatemq_go_memory_limit_bytes", "The Go runtime's soft memory limit in use (memory_limit, GOMEMLIMIT)."},
	{"/gc/heap/live:bytes", "gatemq_go_heap_live_bytes", "Heap memory the last garbage collection found in use."},
	{"/memory/classes/total:bytes", "gatemq_go_memory_bytes", "All memory the Go runtime has mapped."},
}

func writeRuntime(w io.Writer) {
	s := make([]rtmetrics.Sample, len(runtimeSamples))
	for i, r := range runtimeSamples {
		s[i].Name = r.metric
	}
	rtmetrics.Read(s)
	for i, r := range runtimeSamples {
		if s[i].Value.Kind() == rtmetrics.KindUint64 {
			writeFamily(w, r.name, "gauge", r.help, one(float64(s[i].Value.Uint64())))
		}
	}
}

// writePeers writes the members of the peer group by state, every state
// present even at 0.
func writePeers(w io.Writer, p Peers) {
	counts := make(map[gossip.State]int)
	for _, m := range p.Members() {
		counts[m.State]++
	}
	samples := make([]sample, 0, len(gossip.States))
	for _, st := range gossip.States {
		samples = append(samples, sample{fmt.Sprintf(`{state="%s"}`, st), float64(counts[st])})
	}
	writeFamily(w, "gatemq_peer_members", "gauge", "Members of the peer group as this gateway sees them, itself included, by state.", samples...)
}

// byQoS returns one sample per QoS of v.
func byQoS(v [3]uint64) []sample {
	out := make([]sample, 3)
	for i := range v {
		out[i] = sample{fmt.Sprintf(`{qos="%d"}`, i), float64(v[i])}
	}
	return out
}

func writeBroker(w io.Writer, b Broker) {
	st, q := b.Stats(), b.QoSStats()
	online, offline := b.SessionCounts()
	lim := &st.Limits
	f := func(v uint64) float64 { return float64(v) }
	writeFamily(w, "gatemq_uptime_seconds", "gauge", "Seconds since the broker started.", one(st.Uptime))
	writeFamily(w, "gatemq_connections", "gauge", "Client connections now.", one(float64(st.ClientsConnected)))
	writeFamily(w, "gatemq_connections_max", "gauge", "Most client connections at once since start.", one(float64(st.ClientsMaximum)))
	writeFamily(w, "gatemq_connections_total", "counter", "Client connections accepted.", one(f(st.ConnectionsTotal)))
	writeFamily(w, "gatemq_connections_refused_total", "counter", "Connections closed at accept or before CONNECT, by limit.",
		sample{`{reason="max_connections"}`, f(lim.ConnectionsRefused)},
		sample{`{reason="max_connection_rate"}`, f(lim.ConnectionsRateLimited)},
		sample{`{reason="connect_timeout"}`, f(lim.ConnectTimeouts)})
	writeFamily(w, "gatemq_messages_received_total", "counter", "PUBLISH packets received, by QoS.", byQoS(q.MessagesReceived)...)
	writeFamily(w, "gatemq_messages_sent_total", "counter", "PUBLISH packets sent, resends included, by QoS.", byQoS(q.MessagesSent)...)
	writeFamily(w, "gatemq_payload_bytes_received_total", "counter", "Payload bytes of the PUBLISH packets received, by QoS.", byQoS(q.PayloadBytesReceived)...)
	writeFamily(w, "gatemq_payload_bytes_sent_total", "counter", "Payload bytes of the PUBLISH packets sent, by QoS.", byQoS(q.PayloadBytesSent)...)
	writeFamily(w, "gatemq_bytes_received_total", "counter", "MQTT bytes received on the wire.", one(f(st.BytesReceived)))
	writeFamily(w, "gatemq_bytes_sent_total", "counter", "MQTT bytes sent on the wire.", one(f(st.BytesSent)))
	writeFamily(w, "gatemq_packets_received_total", "counter", "MQTT packets received.", one(f(st.PacketsReceived)))
	writeFamily(w, "gatemq_packets_sent_total", "counter", "MQTT packets sent.", one(f(st.PacketsSent)))
	writeFamily(w, "gatemq_messages_dropped_total", "counter", "Messages dropped, by reason.",
		sample{`{reason="queue_full"}`, f(st.PublishDropped)},
		sample{`{reason="packet_too_large"}`, f(st.PublishTooLargeOut)},
		sample{`{reason="await_rel_timeout"}`, f(lim.AwaitRelExpired)})
	writeFamily(w, "gatemq_packets_refused_total", "counter", "Packets refused by a limit, by limit.",
		sample{`{reason="max_subscriptions"}`, f(lim.SubscriptionsRefused)},
		sample{`{reason="max_topic_levels"}`, f(lim.TopicLevelsExceeded)},
		sample{`{reason="max_user_properties"}`, f(lim.UserPropertiesExceeded)})
	writeFamily(w, "gatemq_sessions", "gauge", "Sessions, by state.",
		sample{`{state="online"}`, float64(online)}, sample{`{state="offline"}`, float64(offline)})
	writeFamily(w, "gatemq_subscriptions", "gauge", "Subscriptions.", one(float64(st.Subscriptions)))
	writeFamily(w, "gatemq_retained_messages", "gauge", "Retained messages.", one(float64(st.Retained)))
}

func writeStore(w io.Writer, s Store) {
	st, ds := s.Stats(), s.DiskStats()
	f := func(v uint64) float64 { return float64(v) }
	writeFamily(w, "gatemq_store_records_total", "counter", "Messages committed to the durable store.", one(f(st.Records)))
	writeFamily(w, "gatemq_store_message_commits_total", "counter", "Message transactions (group commits) of the durable store.", one(f(st.Commits)))
	writeFamily(w, "gatemq_store_appends_failed_total", "counter", "Messages the durable store refused, by reason.",
		sample{`{reason="quota"}`, f(st.Refused)}, sample{`{reason="io_error"}`, f(st.Failed)})
	writeFamily(w, "gatemq_store_corrupt_records_total", "counter", "Records that failed their checksum on read.", one(f(st.CorruptRecords)))
	writeFamily(w, "gatemq_store_commits_total", "counter", "Transactions of the durable store: messages, sessions, cursors, retained.", one(f(ds.Commits)))
	writeFamily(w, "gatemq_store_fsyncs_total", "counter", "fdatasync calls of the durable store.", one(f(ds.Fsyncs)))
	writeFamily(w, "gatemq_store_bytes_written_total", "counter", "Bytes of pages the durable store wrote.", one(f(ds.BytesWritten)))
	writeFamily(w, "gatemq_store_size_bytes", "gauge", "Size of the durable store's files.", one(float64(max(st.Bytes, 0))))
}
