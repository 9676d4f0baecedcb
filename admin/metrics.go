package admin

import (
	"fmt"
	"io"

	vm "github.com/VictoriaMetrics/metrics"

	"gatemq/boltstore"
)

// metrics renders /metrics. The broker's and the store's counters are
// read at each scrape (they are atomics already: copying them into
// library counters on every event would only cost the hot path); the
// commit histograms are the library's, fed by the store's commit
// observer.
//
// The histograms have VictoriaMetrics' log-scale buckets, labelled
// vmrange="lo...hi" instead of le: no bucket layout to choose, 18 per
// decade, only the non-empty ones written. _sum and _count work in any
// Prometheus; quantiles need VictoriaMetrics or its histogram_quantile.
// (The library's le-bucket histograms came with versions whose package
// initialisation logs to stderr on kernels without PSI, in every gatemq
// command.)
type metrics struct {
	set     *vm.Set
	commitS *vm.Histogram
	batch   *vm.Histogram
}

func newMetrics(b Broker, st Store) *metrics {
	m := &metrics{set: vm.NewSet()}
	m.set.RegisterMetricsWriter(func(w io.Writer) { writeBroker(w, b) })
	if st != nil {
		m.commitS = m.set.NewHistogram("gatemq_store_commit_duration_seconds")
		m.batch = m.set.NewHistogram("gatemq_store_commit_batch_size")
		m.set.RegisterMetricsWriter(func(w io.Writer) { writeStore(w, st) })
		st.ObserveCommits(m.observe)
	}
	return m
}

// observe records a commit; it runs on the store's writer goroutine.
func (m *metrics) observe(c boltstore.Commit) {
	m.commitS.Update(c.Duration.Seconds())
	m.batch.Update(float64(c.Records))
}

func (m *metrics) write(w io.Writer) { m.set.WritePrometheus(w) }

func writeBroker(w io.Writer, b Broker) {
	st, q := b.Stats(), b.QoSStats()
	online, offline := b.SessionCounts()
	g, c := vm.WriteGaugeUint64, vm.WriteCounterUint64
	vm.WriteGaugeFloat64(w, "gatemq_uptime_seconds", st.Uptime)
	g(w, "gatemq_connections", uint64(st.ClientsConnected))
	g(w, "gatemq_connections_max", uint64(st.ClientsMaximum))
	c(w, "gatemq_connections_total", st.ConnectionsTotal)
	c(w, `gatemq_connections_refused_total{reason="max_connections"}`, st.Limits.ConnectionsRefused)
	c(w, `gatemq_connections_refused_total{reason="max_connection_rate"}`, st.Limits.ConnectionsRateLimited)
	c(w, `gatemq_connections_refused_total{reason="connect_timeout"}`, st.Limits.ConnectTimeouts)
	for i := range 3 {
		c(w, fmt.Sprintf(`gatemq_messages_received_total{qos="%d"}`, i), q.MessagesReceived[i])
		c(w, fmt.Sprintf(`gatemq_messages_sent_total{qos="%d"}`, i), q.MessagesSent[i])
		c(w, fmt.Sprintf(`gatemq_payload_bytes_received_total{qos="%d"}`, i), q.PayloadBytesReceived[i])
		c(w, fmt.Sprintf(`gatemq_payload_bytes_sent_total{qos="%d"}`, i), q.PayloadBytesSent[i])
	}
	c(w, "gatemq_bytes_received_total", st.BytesReceived)
	c(w, "gatemq_bytes_sent_total", st.BytesSent)
	c(w, "gatemq_packets_received_total", st.PacketsReceived)
	c(w, "gatemq_packets_sent_total", st.PacketsSent)
	c(w, `gatemq_messages_dropped_total{reason="queue_full"}`, st.PublishDropped)
	c(w, `gatemq_messages_dropped_total{reason="packet_too_large"}`, st.PublishTooLargeOut)
	c(w, `gatemq_messages_dropped_total{reason="await_rel_timeout"}`, st.Limits.AwaitRelExpired)
	c(w, `gatemq_packets_refused_total{reason="max_subscriptions"}`, st.Limits.SubscriptionsRefused)
	c(w, `gatemq_packets_refused_total{reason="max_topic_levels"}`, st.Limits.TopicLevelsExceeded)
	c(w, `gatemq_packets_refused_total{reason="max_user_properties"}`, st.Limits.UserPropertiesExceeded)
	g(w, `gatemq_sessions{state="online"}`, uint64(online))
	g(w, `gatemq_sessions{state="offline"}`, uint64(offline))
	g(w, "gatemq_subscriptions", uint64(st.Subscriptions))
	g(w, "gatemq_retained_messages", uint64(st.Retained))
}

func writeStore(w io.Writer, s Store) {
	st, ds := s.Stats(), s.DiskStats()
	g, c := vm.WriteGaugeUint64, vm.WriteCounterUint64
	c(w, "gatemq_store_records_total", st.Records)
	c(w, "gatemq_store_message_commits_total", st.Commits)
	c(w, `gatemq_store_appends_failed_total{reason="quota"}`, st.Refused)
	c(w, `gatemq_store_appends_failed_total{reason="io_error"}`, st.Failed)
	c(w, "gatemq_store_corrupt_records_total", st.CorruptRecords)
	c(w, "gatemq_store_commits_total", ds.Commits)
	c(w, "gatemq_store_fsyncs_total", ds.Fsyncs)
	c(w, "gatemq_store_bytes_written_total", ds.BytesWritten)
	g(w, "gatemq_store_size_bytes", uint64(max(st.Bytes, 0)))
}
