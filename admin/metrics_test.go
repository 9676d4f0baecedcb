package admin

import (
	"bufio"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"gatemq/boltstore"
	"gatemq/broker/packet"
)

// families are the metric families /metrics has with a store, and their
// types; the README lists them.
var families = map[string]dto.MetricType{
	"gatemq_uptime_seconds":                dto.MetricType_GAUGE,
	"gatemq_connections":                   dto.MetricType_GAUGE,
	"gatemq_connections_max":               dto.MetricType_GAUGE,
	"gatemq_connections_total":             dto.MetricType_COUNTER,
	"gatemq_connections_refused_total":     dto.MetricType_COUNTER,
	"gatemq_messages_received_total":       dto.MetricType_COUNTER,
	"gatemq_messages_sent_total":           dto.MetricType_COUNTER,
	"gatemq_payload_bytes_received_total":  dto.MetricType_COUNTER,
	"gatemq_payload_bytes_sent_total":      dto.MetricType_COUNTER,
	"gatemq_bytes_received_total":          dto.MetricType_COUNTER,
	"gatemq_bytes_sent_total":              dto.MetricType_COUNTER,
	"gatemq_packets_received_total":        dto.MetricType_COUNTER,
	"gatemq_packets_sent_total":            dto.MetricType_COUNTER,
	"gatemq_messages_dropped_total":        dto.MetricType_COUNTER,
	"gatemq_packets_refused_total":         dto.MetricType_COUNTER,
	"gatemq_sessions":                      dto.MetricType_GAUGE,
	"gatemq_subscriptions":                 dto.MetricType_GAUGE,
	"gatemq_retained_messages":             dto.MetricType_GAUGE,
	"gatemq_store_records_total":           dto.MetricType_COUNTER,
	"gatemq_store_message_commits_total":   dto.MetricType_COUNTER,
	"gatemq_store_commits_total":           dto.MetricType_COUNTER,
	"gatemq_store_fsyncs_total":            dto.MetricType_COUNTER,
	"gatemq_store_bytes_written_total":     dto.MetricType_COUNTER,
	"gatemq_store_size_bytes":              dto.MetricType_GAUGE,
	"gatemq_store_appends_failed_total":    dto.MetricType_COUNTER,
	"gatemq_store_corrupt_records_total":   dto.MetricType_COUNTER,
	"gatemq_store_commit_duration_seconds": dto.MetricType_HISTOGRAM,
	"gatemq_store_commit_batch_size":       dto.MetricType_HISTOGRAM,
}

// parseMetrics checks body as the Prometheus text format strictly: the
// expfmt parser, and each family's lines together, HELP then TYPE first.
// It returns the families by name.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	// Classic metric names only: what every Prometheus accepts.
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	seen := map[string]bool{}
	current := ""
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		var name string
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name = strings.Fields(line)[2]
			if seen[name] {
				t.Errorf("line %d: family %s again: %q", i+1, name, line)
			}
			seen[name], current = true, name
			continue
		case strings.HasPrefix(line, "# TYPE "):
			name = strings.Fields(line)[2]
		default:
			name = strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]
			if mf := mfs[current]; mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM {
				name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			}
		}
		if name != current {
			t.Errorf("line %d: %q outside its family's HELP and TYPE (in %s)", i+1, line, current)
		}
	}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "gatemq_") {
			t.Errorf("family %s is not prefixed gatemq_", name)
		}
		if mf.GetHelp() == "" {
			t.Errorf("family %s has no HELP text", name)
		}
	}
	return mfs
}

// checkFamilies checks that mfs has every family of families with its
// type, and that each histogram has cumulative le buckets ending in
// +Inf, which equals its count.
func checkFamilies(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	for name, typ := range families {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("no family %s", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, mf.GetType(), typ)
		}
		if typ != dto.MetricType_HISTOGRAM {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		bs := h.GetBucket()
		if len(bs) < 10 {
			t.Fatalf("%s has %d buckets", name, len(bs))
		}
		for i := 1; i < len(bs); i++ {
			if bs[i].GetUpperBound() <= bs[i-1].GetUpperBound() || bs[i].GetCumulativeCount() < bs[i-1].GetCumulativeCount() {
				t.Errorf("%s: bucket %d (%v) does not follow %v", name, i, bs[i], bs[i-1])
			}
		}
		if last := bs[len(bs)-1]; !math.IsInf(last.GetUpperBound(), 1) || last.GetCumulativeCount() != h.GetSampleCount() {
			t.Errorf("%s: last bucket %v, count %d: want le=+Inf holding the count", name, last, h.GetSampleCount())
		}
	}
}

// value returns the value of the sample of family name with the label
// pair (or the only sample, for label ""): a counter's, a gauge's, or a
// histogram's count.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name, label, lvalue string) float64 {
	t.Helper()
	for _, m := range mfs[name].GetMetric() {
		ok := label == ""
		for _, lp := range m.GetLabel() {
			ok = ok || (lp.GetName() == label && lp.GetValue() == lvalue)
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no sample %s{%s=%q}", name, label, lvalue)
	return 0
}

func TestMetrics_Exposition(t *testing.T) {
	fb, fs := &fakeBroker{}, &fakeStore{}
	_, c, _ := startUnix(t, Options{Broker: fb, Store: fs})
	fs.mu.Lock()
	for _, cm := range []boltstore.Commit{
		{Records: 1, Duration: 80 * time.Microsecond},
		{Records: 256, Duration: 3 * time.Millisecond},
		{Records: 100000, Duration: 20 * time.Second}, // beyond the last bounds
	} {
		fs.obs(cm)
	}
	fs.mu.Unlock()
	_, body := do(t, c, "GET", "http://admin/metrics", nil)
	mfs := parseMetrics(t, body)
	checkFamilies(t, mfs)
	for _, want := range []string{
		`gatemq_store_commit_duration_seconds_bucket{le="0.0001"} 1` + "\n",
		`gatemq_store_commit_duration_seconds_bucket{le="0.0025"} 1` + "\n",
		`gatemq_store_commit_duration_seconds_bucket{le="0.005"} 2` + "\n",
		`gatemq_store_commit_duration_seconds_bucket{le="10"} 2` + "\n",
		`gatemq_store_commit_duration_seconds_bucket{le="+Inf"} 3` + "\n",
		`gatemq_store_commit_batch_size_bucket{le="1"} 1` + "\n",
		`gatemq_store_commit_batch_size_bucket{le="256"} 2` + "\n",
		`gatemq_store_commit_batch_size_bucket{le="65536"} 2` + "\n",
		"gatemq_store_commit_batch_size_sum 100257\n",
		"gatemq_store_commit_batch_size_count 3\n",
		"# HELP gatemq_connections Client connections now.\n# TYPE gatemq_connections gauge\ngatemq_connections 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestMetrics_RealLoad scrapes a real broker with a real store under a
// QoS 1 load for a durable session: the counters and both histograms
// move, and the text stays strictly valid.
func TestMetrics_RealLoad(t *testing.T) {
	srv, st, addr := startStoreBroker(t)
	_, c, _ := startUnix(t, Options{Broker: srv, Store: st})
	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		_, body := do(t, c, "GET", "http://admin/metrics", nil)
		mfs := parseMetrics(t, body)
		checkFamilies(t, mfs)
		return mfs
	}
	before := scrape()

	sub, subR := dialMQTT(t, addr, &packet.Connect{ClientID: "durable-sub", KeepAlive: 60})
	sub.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "load/#", QoS: 1}}}, packet.V311))
	if _, ok := readMQTT(t, sub, subR).(*packet.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	pub, pubR := dialMQTT(t, addr, &packet.Connect{ClientID: "pub", CleanStart: true, KeepAlive: 60})
	const n = 300
	var out []byte
	for i := range n {
		out = packet.Append(out, &packet.Publish{Topic: "load/1", QoS: 1, PacketID: uint16(i + 1), Payload: []byte("22.5")}, packet.V311)
	}
	pub.Write(out)
	for range n { // PUBACKs come after the commits that hold the messages
		if _, ok := readMQTT(t, pub, pubR).(*packet.Puback); !ok {
			t.Fatal("want PUBACK")
		}
	}

	after := scrape()
	grew := func(name, label, lvalue string, by float64) {
		t.Helper()
		if d := value(t, after, name, label, lvalue) - value(t, before, name, label, lvalue); d < by {
			t.Errorf("%s{%s=%q} grew by %v, want at least %v", name, label, lvalue, d, by)
		}
	}
	grew("gatemq_messages_received_total", "qos", "1", n)
	grew("gatemq_payload_bytes_received_total", "qos", "1", 4*n)
	grew("gatemq_connections_total", "", "", 2)
	grew("gatemq_store_records_total", "", "", n)
	grew("gatemq_store_message_commits_total", "", "", 1)
	grew("gatemq_store_fsyncs_total", "", "", 2)
	grew("gatemq_store_bytes_written_total", "", "", 4096)
	grew("gatemq_store_commit_batch_size", "", "", 1)
	grew("gatemq_store_commit_duration_seconds", "", "", 1)
	batch := after["gatemq_store_commit_batch_size"].GetMetric()[0].GetHistogram()
	if batch.GetSampleSum() < n {
		t.Errorf("records in the batch histogram: %v, want at least %d", batch.GetSampleSum(), n)
	}
	if got, want := batch.GetSampleCount(), uint64(value(t, after, "gatemq_store_message_commits_total", "", "")); got != want {
		t.Errorf("batch histogram counts %d commits, the counter %d", got, want)
	}
}

func dialMQTT(t *testing.T, addr string, cp *packet.Connect) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cp.ProtocolName, cp.Version = "MQTT", packet.V311
	nc.Write(packet.Append(nil, cp, packet.V311))
	br := bufio.NewReader(nc)
	if ack, ok := readMQTT(t, nc, br).(*packet.Connack); !ok || ack.Reason != packet.Success {
		t.Fatalf("CONNACK %+v", ack)
	}
	return nc, br
}

func readMQTT(t *testing.T, nc net.Conn, br *bufio.Reader) packet.Packet {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	pk, err := packet.Read(br, packet.V311, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}
