package bench

import (
	"context"
	"fmt"
	"gatemq/internal/testkit"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPubSub_NoMessageLost(t *testing.T) {
	addr, pid := startMosquitto(t)
	cases := []struct {
		name       string
		qos        int
		pubs, subs int
		topic      string
		filter     string
		n          int
		fan        int // deliveries per message
	}{
		{"qos0 pairs", 0, 2, 2, "t0/%i", "t0/%i", 500, 1},
		{"qos1 1->1", 1, 1, 1, "t1/%i", "t1/%i", 500, 1},
		{"qos2 fan-in on a wildcard", 2, 5, 1, "t2/in/%i", "t2/in/+", 100, 1},
		{"qos1 fan-out", 1, 1, 5, "t3/out", "t3/out", 200, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := runBench(t, "pubsub", "-h", addr, "-json", "-label", "x", "-broker", "mosquitto",
				"-broker-pid", fmt.Sprint(pid), "-q", fmt.Sprint(tc.qos),
				"-pubs", fmt.Sprint(tc.pubs), "-subs", fmt.Sprint(tc.subs),
				"-t", tc.topic, "-f", tc.filter, "-n", fmt.Sprint(tc.n), "-s", "32", "-window", "300")
			if code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errb)
			}
			r := decode[PubSubResult](t, out)
			sent := int64(tc.pubs * tc.n)
			if r.Sent != sent || r.Expected != sent*int64(tc.fan) || r.Received != r.Expected || r.Lost != 0 || r.Extra != 0 {
				t.Errorf("sent %d expected %d received %d lost %d extra %d; want %d sent, %d received",
					r.Sent, r.Expected, r.Received, r.Lost, r.Extra, sent, sent*int64(tc.fan))
			}
			if r.Stopped != "count" || r.Errors != 0 || r.Label != "x" || r.Broker != "mosquitto" {
				t.Errorf("stopped %q errors %d (%s) label %q broker %q", r.Stopped, r.Errors, r.FirstErr, r.Label, r.Broker)
			}
			if r.Latency == nil || r.Latency.Count != uint64(r.Received) || r.RecvRate <= 0 {
				t.Errorf("latency %+v over %d received, rate %v", r.Latency, r.Received, r.RecvRate)
			}
			if (tc.qos > 0) != (r.AckLatency != nil) {
				t.Errorf("ack latency %+v at QoS %d", r.AckLatency, tc.qos)
			}
			if r.CPUSeconds == nil || r.CPUPerMsgUS == nil {
				t.Errorf("no broker cpu figures: %s", out)
			}
		})
	}
}

func TestPubAndSub_SeparateRuns(t *testing.T) {
	addr, _ := startMosquitto(t)
	type subRun struct {
		code     int
		out, err string
	}
	var subErr testkit.Buffer
	done := make(chan subRun, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out testkit.Buffer
		code := run(ctx, []string{"sub", "-h", addr, "-json", "-c", "2", "-q", "1", "-t", "ps/#", "-n", "600", "-idle", "20s"}, &out, &subErr)
		done <- subRun{code, out.String(), subErr.String()}
	}()
	testkit.WaitFor(t, 20*time.Second, func() error {
		if !strings.Contains(subErr.String(), "subscribed") {
			return fmt.Errorf("subscriber not ready: %q", subErr.String())
		}
		return nil
	})

	code, out, errb := runBench(t, "pub", "-h", addr, "-json", "-c", "3", "-q", "1", "-t", "ps/%i", "-n", "100", "-s", "16")
	if code != 0 {
		t.Fatalf("pub exit %d: %s%s", code, out, errb)
	}
	pr := decode[PubResult](t, out)
	if pr.Sent != 300 || pr.Errors != 0 || pr.Rate <= 0 || pr.AckLatency == nil || pr.AckLatency.Count != 300 {
		t.Errorf("pub result %+v", pr)
	}

	s := <-done
	if s.code != 0 {
		t.Fatalf("sub exit %d: %s%s", s.code, s.out, s.err)
	}
	sr := decode[SubResult](t, s.out)
	if sr.Received != 600 || sr.Stopped != "count" || sr.Latency == nil || sr.Latency.Count != 600 {
		t.Errorf("sub result %+v", sr)
	}
}

func TestPub_BoundedByDurationAndRate(t *testing.T) {
	addr, _ := startMosquitto(t)
	start := time.Now()
	code, out, errb := runBench(t, "pub", "-h", addr, "-json", "-n", "0", "-d", "300ms", "-r", "200", "-c", "2", "-q", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errb)
	}
	r := decode[PubResult](t, out)
	// 200 msgs/s for 0.3 s: about 60, never many more.
	if r.Stopped != "duration" || r.Sent < 10 || r.Sent > 80 {
		t.Errorf("stopped by %q after %d messages, want duration after about 60", r.Stopped, r.Sent)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("run took %v", took)
	}
}

func TestPub_TextOutput(t *testing.T) {
	addr, _ := startMosquitto(t)
	code, out, errb := runBench(t, "pub", "-h", addr, "-n", "50", "-q", "2", "-I", "1ms")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errb)
	}
	for _, want := range []string{"sent:            50 in", "pubcomp latency: µs p50"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestConn_IdleConnectionsAndRSS(t *testing.T) {
	addr, pid := startMosquitto(t)
	code, out, errb := runBench(t, "conn", "-h", addr, "-json", "-c", "50", "-r", "500", "-d", "50ms", "-settle", "10ms",
		"-broker-pid", fmt.Sprint(pid), "-label", "conn", "-broker", "mosquitto")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errb)
	}
	r := decode[ConnResult](t, out)
	if r.Connected != 50 || r.Failed != 0 || r.Dropped != 0 || r.Rate <= 0 || r.Stopped != "duration" {
		t.Errorf("conn result %+v", r)
	}
	if r.RSSBeforeKB <= 0 || r.RSSAfterKB <= 0 || r.RSSError != "" {
		t.Errorf("rss before %d after %d: %s", r.RSSBeforeKB, r.RSSAfterKB, r.RSSError)
	}
}

func TestConn_RefusedCountsFailures(t *testing.T) {
	addr := testkit.FreeAddr(t) // nothing listens there
	code, out, _ := runBench(t, "conn", "-h", addr, "-json", "-c", "5", "-d", "1ms")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	r := decode[ConnResult](t, out)
	if r.Connected != 0 || r.Failed != 5 || r.FirstErr == "" {
		t.Errorf("conn result %+v", r)
	}
}

func TestRun_Usage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"help"}, 0},
		{"subcommand help", []string{"pub", "-help"}, 0},
		{"unknown subcommand", []string{"bogus"}, 2},
		{"unknown flag", []string{"pub", "-bogus"}, 2},
		{"unbounded pub", []string{"pub", "-n", "0"}, 2},
		{"bad qos", []string{"pubsub", "-q", "3"}, 2},
		{"interval and rate", []string{"pub", "-I", "1s", "-r", "5"}, 2},
		{"stray argument", []string{"sub", "extra"}, 2},
		{"unbounded sub", []string{"sub", "-idle", "0"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, errb := runBench(t, tc.args...); code != tc.code {
				t.Errorf("exit %d, want %d: %s%s", code, tc.code, out, errb)
			}
		})
	}
}

func TestRun_ReportFromFiles(t *testing.T) {
	f := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(f, []byte(reportInput), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runBench(t, "report", f)
	if code != 0 || !strings.Contains(out, "| msgs/s QoS 0 1->1 | 200 | 100 | 2.00 |") {
		t.Errorf("exit %d: %s%s", code, out, errb)
	}
	if !strings.Contains(errb, "skipped 1 line") {
		t.Errorf("stderr %q does not mention the skipped line", errb)
	}

	// A broker without results keeps its column, so the table keeps its shape.
	code, out, errb = runBench(t, "report", "-brokers", "nats,gatemq,mosquitto", f)
	if code != 0 || !strings.Contains(out, "| figure | nats | gatemq | mosquitto | ratio |") ||
		!strings.Contains(out, "| msgs/s QoS 0 1->1 | - | 200 | 100 | - |") {
		t.Errorf("exit %d: %s%s", code, out, errb)
	}
}
