package admin

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
)

// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): each
// metric family once, its "# HELP" and "# TYPE" lines first, then all its
// samples.

// sample is one line of a family: its labels, "" or `{qos="1"}`, and
// value.
type sample struct {
	labels string
	value  float64
}

// writeFamily writes one metric family of type typ ("counter" or
// "gauge").
func writeFamily(w io.Writer, name, typ, help string, samples ...sample) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	for _, s := range samples {
		fmt.Fprintf(w, "%s%s %s\n", name, s.labels, formatValue(s.value))
	}
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.FormatInt(int64(v), 10) // counts as integers, not 1.048576e+06
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// one is a family of one sample without labels.
func one(v float64) sample { return sample{value: v} }

// histogram is a Prometheus histogram with fixed upper bounds: what
// histogram_quantile() needs. It is safe for concurrent use; observe
// takes a mutex for a few memory operations.
type histogram struct {
	bounds []float64 // ascending upper bounds; +Inf is implied

	// mu guards counts and sum.
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is above every bound
	sum    float64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

// observe records v in the first bucket whose bound is at least v.
func (h *histogram) observe(v float64) {
	i := len(h.bounds)
	for j, b := range h.bounds { // a few dozen bounds: a scan beats a search
		if v <= b {
			i = j
			break
		}
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.mu.Unlock()
}

// write writes the histogram as the family name: cumulative
// name_bucket{le="..."} lines, +Inf last, then name_sum and name_count.
func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	counts := append([]uint64(nil), h.counts...)
	sum := h.sum
	h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var total uint64
	for i, n := range counts {
		total += n
		le := "+Inf"
		if i < len(h.bounds) {
			le = formatValue(h.bounds[i])
		}
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, le, total)
	}
	fmt.Fprintf(w, "%s_sum %s\n%s_count %d\n", name, formatValue(sum), name, total)
}

// commitSecondsBounds are the buckets of the commit latency, 100µs to
// 10s in 1-2.5-5 steps: an fsync on eMMC takes about a millisecond, on a
// tired SD card up to seconds.
var commitSecondsBounds = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10,
}

// batchSizeBounds are the buckets of the records per commit: powers of
// two from 1 to 65536, durable_storage.batch_size's range.
var batchSizeBounds = []float64{
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
}
