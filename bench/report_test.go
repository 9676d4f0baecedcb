package bench

import (
	"bytes"
	"strings"
	"testing"
)

const reportInput = `
{"mode":"pubsub","label":"qos0","broker":"gatemq","qos":0,"pubs":1,"subs":1,"filter":"bench/%i","recv_rate":300,"lost":0,"stopped":"count","broker_cpu_us_per_msg":2,"latency":{"p50_us":10,"p99_us":20}}
{"mode":"pubsub","label":"qos0","broker":"mosquitto","qos":0,"pubs":1,"subs":1,"filter":"bench/%i","recv_rate":100,"lost":0,"stopped":"count","broker_cpu_us_per_msg":4}
{"mode":"pubsub","label":"qos0","broker":"gatemq","qos":0,"pubs":1,"subs":1,"filter":"bench/%i","recv_rate":100,"lost":1,"stopped":"count","broker_cpu_us_per_msg":3}
{"mode":"pubsub","label":"qos0","broker":"gatemq","qos":0,"pubs":1,"subs":1,"filter":"bench/%i","recv_rate":200,"lost":2,"stopped":"idle","broker_cpu_us_per_msg":1}
not json: a broker crashed mid-line
{"mode":"pubsub","label":"fanin","broker":"gatemq","qos":1,"pubs":50,"subs":1,"filter":"bench/in/+","recv_rate":50,"lost":0,"stopped":"count"}
{"mode":"pubsub","label":"lat","broker":"gatemq","qos":1,"pubs":1,"subs":1,"filter":"bench/%i","target_rate":2000,"recv_rate":2000,"lost":0,"stopped":"count","latency":{"p50_us":100,"p99_us":300}}
{"mode":"pubsub","label":"lat","broker":"mosquitto","qos":1,"pubs":1,"subs":1,"filter":"bench/%i","target_rate":2000,"recv_rate":2000,"lost":0,"stopped":"count","latency":{"p50_us":50,"p99_us":600}}
{"mode":"conn","label":"conn","broker":"gatemq","clients":5000,"rate":1000,"failed":0,"rss_before_kb":8000,"rss_per_1000_kb":2000,"stopped":"duration"}
{"mode":"conn","label":"conn","broker":"mosquitto","clients":5000,"rate":1000,"failed":0,"rss_before_kb":4000,"rss_per_1000_kb":500,"stopped":"duration"}
`

func TestReport_Table(t *testing.T) {
	rp := newReport()
	skipped, err := rp.add(strings.NewReader(reportInput))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Errorf("skipped %d lines, want 1", skipped)
	}
	var out bytes.Buffer
	rp.write(&out)
	got := out.String()
	// Each row: title | gatemq | mosquitto | ratio (> 1 means gatemq better).
	wantRows := []string{
		"| figure | gatemq | mosquitto | ratio |",
		"| msgs/s QoS 0 1->1 | 200 | 100 | 2.00 |",          // median of 300, 100, 200
		"| msgs/s QoS 1 50->1 on bench/in/+ | 50 | - | - |", // no mosquitto run
		"| latency p50 µs, QoS 1 1->1 at 2000 msgs/s | 100 | 50 | 0.50 |",
		"| latency p99 µs, QoS 1 1->1 at 2000 msgs/s | 300 | 600 | 2.00 |",
		"| broker CPU µs/msg, QoS 0 1->1 | 2.00 | 4.00 | 2.00 |",
		"| RSS idle KiB | 8000 | 4000 | 0.50 |",
		"| RSS KiB per 1,000 idle conns (5000 open) | 2000 | 500 | 0.25 |",
		"| lost messages, QoS 0 1->1 | 3 | 0 | - |", // summed over runs
		"qos0 on gatemq: 1 of 3 runs stopped early",
		"- msgs/s QoS 0 1->1: gatemq 100–300", // runs spread widely
	}
	for _, row := range wantRows {
		if !strings.Contains(got, row) {
			t.Errorf("table lacks %q:\n%s", row, got)
		}
	}
	if strings.Contains(got, "- broker CPU µs/msg, QoS 1") {
		t.Errorf("a row with a single run is reported as spread:\n%s", got)
	}
	if strings.Index(got, "msgs/s QoS 0") > strings.Index(got, "latency p50") {
		t.Errorf("throughput rows should come before latency rows:\n%s", got)
	}
}

// The durable loads of bench.sh: pub and sub runs with disk writes, and
// the restart time bench.sh writes itself.
const durableReportInput = `
{"mode":"pub","label":"durable 1 pub","broker":"gatemq","qos":1,"rate":30000,"stopped":"count","ack_latency":{"p50_us":900,"p99_us":2000},"broker_write_bytes_per_msg":150}
{"mode":"pub","label":"durable 1 pub","broker":"mosquitto","qos":1,"rate":20000,"stopped":"count","ack_latency":{"p50_us":100,"p99_us":400},"broker_write_bytes_per_msg":0}
{"mode":"sub","label":"drain","broker":"gatemq","rate":80000,"stopped":"count","broker_write_bytes_per_msg":20}
{"mode":"restart","label":"1M msgs","broker":"gatemq","ready_ms":250,"stopped":"count"}
`

func TestReport_DurableRows(t *testing.T) {
	rp := newReport()
	if _, err := rp.add(strings.NewReader(durableReportInput)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rp.write(&out)
	got := out.String()
	for _, row := range []string{
		"| publish msgs/s durable 1 pub | 30000 | 20000 | 1.50 |",
		"| PUBACK p50 µs, durable 1 pub | 900 | 100 | 0.11 |",
		"| PUBACK p99 µs, durable 1 pub | 2000 | 400 | 0.20 |",
		"| disk bytes written/msg, durable 1 pub | 150 | 0 | - |", // no ratio
		"| receive msgs/s drain | 80000 | - | - |",
		"| disk bytes written/msg, drain | 20 | - | - |",
		"| restart to ready ms, 1M msgs | 250 | - | - |",
	} {
		if !strings.Contains(got, row) {
			t.Errorf("table lacks %q:\n%s", row, got)
		}
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range cases {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRatio(t *testing.T) {
	if r, ok := ratio(200, 100, 1); !ok || r != 2 {
		t.Errorf("higher-better ratio = %v %v", r, ok)
	}
	if r, ok := ratio(50, 100, -1); !ok || r != 2 {
		t.Errorf("lower-better ratio = %v %v", r, ok)
	}
	if _, ok := ratio(0, 100, -1); ok {
		t.Error("ratio with a zero divisor")
	}
	if _, ok := ratio(1, 1, 0); ok {
		t.Error("ratio for a row without one")
	}
}
