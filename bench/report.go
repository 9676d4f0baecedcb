package bench

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// A record is one JSON result line, as read back by report.
type record map[string]any

// num returns the number at a dotted path ("latency.p50_us").
func (r record) num(path string) (float64, bool) {
	var v any = map[string]any(r)
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		if v, ok = m[k]; !ok {
			return 0, false
		}
	}
	f, ok := v.(float64)
	return f, ok
}

func (r record) str(k string) string {
	s, _ := r[k].(string)
	return s
}

// A reportRow is one line of the table: a figure of one load.
type reportRow struct {
	title string
	label string
	path  string
	// better is +1 when a higher value is better (the ratio is first
	// broker over second), -1 when lower is better (second over first),
	// 0 for no ratio.
	better int
	sum    bool // add the runs up instead of taking their median
	format string
}

// report holds the records of a benchmark, grouped by load and broker.
type report struct {
	brokers []string
	labels  []string
	first   map[string]record              // label -> its first record
	runs    map[string]map[string][]record // label -> broker -> records
}

func newReport() *report {
	return &report{first: map[string]record{}, runs: map[string]map[string][]record{}}
}

// add reads JSON lines from r; lines that are not JSON objects with a
// label and a broker are skipped and counted.
func (rp *report) add(r io.Reader) (skipped int, err error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		var rec record
		if json.Unmarshal([]byte(line), &rec) != nil || rec.str("label") == "" || rec.str("broker") == "" {
			skipped++
			continue
		}
		label, broker := rec.str("label"), rec.str("broker")
		if !slices.Contains(rp.brokers, broker) {
			rp.brokers = append(rp.brokers, broker)
		}
		if _, ok := rp.runs[label]; !ok {
			rp.labels = append(rp.labels, label)
			rp.first[label] = rec
			rp.runs[label] = map[string][]record{}
		}
		rp.runs[label][broker] = append(rp.runs[label][broker], rec)
	}
	return skipped, s.Err()
}

// describe names a load from its first record: "QoS 1 50->1 bench/in/+".
func describe(rec record) string {
	qos, _ := rec.num("qos")
	pubs, _ := rec.num("pubs")
	subs, _ := rec.num("subs")
	d := fmt.Sprintf("QoS %.0f %.0f->%.0f", qos, pubs, subs)
	if f := rec.str("filter"); strings.ContainsAny(f, "+#") {
		d += " on " + f
	}
	if r, ok := rec.num("target_rate"); ok && r > 0 {
		d += fmt.Sprintf(" at %.0f msgs/s", r)
	}
	return d
}

// rows lays out the table: throughput, latency, broker CPU per message,
// disk writes per message, memory, restart times, then lost messages.
func (rp *report) rows() []reportRow {
	var tput, lat, cpu, disk, mem, restart, lost []reportRow
	// diskRow adds the bytes written per message, when measured. It has
	// no ratio: a broker that does not write per message has 0.
	diskRow := func(rec record, l string) {
		if _, ok := rec.num("broker_write_bytes_per_msg"); ok {
			disk = append(disk, reportRow{title: "disk bytes written/msg, " + l, label: l, path: "broker_write_bytes_per_msg", format: "%.0f"})
		}
	}
	for _, l := range rp.labels {
		rec := rp.first[l]
		switch rec.str("mode") {
		case "pubsub":
			d := describe(rec)
			if r, _ := rec.num("target_rate"); r > 0 {
				lat = append(lat,
					reportRow{title: "latency p50 µs, " + d, label: l, path: "latency.p50_us", better: -1, format: "%.0f"},
					reportRow{title: "latency p99 µs, " + d, label: l, path: "latency.p99_us", better: -1, format: "%.0f"})
			} else {
				tput = append(tput, reportRow{title: "msgs/s " + d, label: l, path: "recv_rate", better: 1, format: "%.0f"})
			}
			cpu = append(cpu, reportRow{title: "broker CPU µs/msg, " + d, label: l, path: "broker_cpu_us_per_msg", better: -1, format: "%.2f"})
			lost = append(lost, reportRow{title: "lost messages, " + d, label: l, path: "lost", sum: true, format: "%.0f"})
		case "conn":
			c, _ := rec.num("clients")
			mem = append(mem,
				reportRow{title: "RSS idle KiB", label: l, path: "rss_before_kb", better: -1, format: "%.0f"},
				reportRow{title: fmt.Sprintf("RSS KiB per 1,000 idle conns (%.0f open)", c), label: l, path: "rss_per_1000_kb", better: -1, format: "%.0f"},
				reportRow{title: "connections/s", label: l, path: "rate", better: 1, format: "%.0f"},
				reportRow{title: "failed connections", label: l, path: "failed", sum: true, format: "%.0f"})
		case "pub":
			tput = append(tput, reportRow{title: "publish msgs/s " + l, label: l, path: "rate", better: 1, format: "%.0f"})
			if _, ok := rec.num("ack_latency.p50_us"); ok {
				q, _ := rec.num("qos")
				a := strings.ToUpper(ackName(int(q)))
				lat = append(lat,
					reportRow{title: a + " p50 µs, " + l, label: l, path: "ack_latency.p50_us", better: -1, format: "%.0f"},
					reportRow{title: a + " p99 µs, " + l, label: l, path: "ack_latency.p99_us", better: -1, format: "%.0f"})
			}
			cpu = append(cpu, reportRow{title: "broker CPU µs/msg, " + l, label: l, path: "broker_cpu_us_per_msg", better: -1, format: "%.2f"})
			diskRow(rec, l)
		case "sub":
			tput = append(tput, reportRow{title: "receive msgs/s " + l, label: l, path: "rate", better: 1, format: "%.0f"})
			diskRow(rec, l)
		case "restart":
			// Written by scripts/bench.sh: process start to the listener
			// accepting connections.
			restart = append(restart, reportRow{title: "restart to ready ms, " + l, label: l, path: "ready_ms", better: -1, format: "%.0f"})
		}
	}
	return slices.Concat(tput, lat, cpu, disk, mem, restart, lost)
}

// values returns a row's figure in each run of one broker.
func (rp *report) values(row reportRow, broker string) []float64 {
	var vs []float64
	for _, rec := range rp.runs[row.label][broker] {
		if v, ok := rec.num(row.path); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// value aggregates a row over the runs of one broker.
func (rp *report) value(row reportRow, broker string) (float64, bool) {
	vs := rp.values(row, broker)
	if len(vs) == 0 {
		return 0, false
	}
	if row.sum {
		var s float64
		for _, v := range vs {
			s += v
		}
		return s, true
	}
	return median(vs), true
}

// median returns the middle value of vs (the mean of the two middle ones
// for an even count); vs is sorted in place.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// ratio orients a against b so that > 1 means a is better.
func ratio(a, b float64, better int) (float64, bool) {
	switch {
	case better > 0 && b > 0:
		return a / b, true
	case better < 0 && a > 0:
		return b / a, true
	}
	return 0, false
}

// write prints the table in Markdown.
func (rp *report) write(w io.Writer) {
	if len(rp.labels) == 0 {
		fmt.Fprintln(w, "no results")
		return
	}
	cols := slices.Clone(rp.brokers)
	withRatio := len(cols) >= 2
	if withRatio {
		a, b := cols[0], cols[1]
		fmt.Fprintf(w, "Medians over runs; ratio > 1.0 means %s is better: %s/%s for msgs/s and connections/s, %s/%s for latency, CPU and RSS.\n\n", a, a, b, b, a)
		cols = append(cols, "ratio")
	}
	fmt.Fprintf(w, "| figure | %s |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(cols)))
	for _, row := range rp.rows() {
		cells := []string{row.title}
		var vals []float64
		var oks []bool
		for _, b := range rp.brokers {
			v, ok := rp.value(row, b)
			vals, oks = append(vals, v), append(oks, ok)
			if ok {
				cells = append(cells, fmt.Sprintf(row.format, v))
			} else {
				cells = append(cells, "-")
			}
		}
		if withRatio {
			r, ok := ratio(vals[0], vals[1], row.better)
			if ok && oks[0] && oks[1] && !math.IsInf(r, 0) {
				cells = append(cells, fmt.Sprintf("%.2f", r))
			} else {
				cells = append(cells, "-")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	// A median hides how much the runs disagreed: name the rows whose
	// runs spread over more than a quarter of their median.
	var spread []string
	for _, row := range rp.rows() {
		if row.sum {
			continue
		}
		var ranges []string
		wide := false
		for _, b := range rp.brokers {
			vs := rp.values(row, b)
			if len(vs) < 2 {
				continue
			}
			lo, hi, m := slices.Min(vs), slices.Max(vs), median(vs)
			if m > 0 && (hi-lo)/m > 0.25 {
				wide = true
			}
			ranges = append(ranges, fmt.Sprintf("%s "+row.format+"–"+row.format, b, lo, hi))
		}
		if wide {
			spread = append(spread, fmt.Sprintf("- %s: %s", row.title, strings.Join(ranges, ", ")))
		}
	}
	if len(spread) > 0 {
		fmt.Fprintf(w, "\nRuns spread over more than 25%% of the median (min–max; a busy machine?):\n%s\n", strings.Join(spread, "\n"))
	}

	// Runs that did not end with every message counted are worth a look.
	var notes []string
	for _, l := range rp.labels {
		for _, b := range rp.brokers {
			n, bad := 0, 0
			for _, rec := range rp.runs[l][b] {
				n++
				if s := rec.str("stopped"); s != "count" && s != "duration" {
					bad++
				}
			}
			if bad > 0 {
				notes = append(notes, fmt.Sprintf("%s on %s: %d of %d runs stopped early (idle, error or interrupted)", l, b, bad, n))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: gatemq bench report [-brokers a,b] [FILE...]\n\nReads the -json lines of runs made with -label and -broker (stdin when no\nFILE) and prints a Markdown table of medians per load and broker.\n\n")
		fs.PrintDefaults()
	}
	order := fs.String("brokers", "", "comma-separated broker `names` in column order; the first is compared with the second (default: order of appearance)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	rp := newReport()
	if *order != "" {
		rp.brokers = strings.Split(*order, ",")
	}
	skipped := 0
	if fs.NArg() == 0 {
		n, err := rp.add(os.Stdin)
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		skipped += n
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open results: %w", err)
		}
		n, err := rp.add(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		skipped += n
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "gatemq bench report: skipped %d lines that are not labelled JSON results\n", skipped)
	}
	rp.write(stdout)
	return nil
}
