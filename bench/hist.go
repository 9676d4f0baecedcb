package bench

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// Histogram bucket layout: values below 2^(histSubBits+1) ns have a bucket
// each; above that every power of two is split into 2^histSubBits buckets,
// so a bucket's midpoint is within 1/2^(histSubBits+1) (0.4%) of any value
// in it. Values beyond 2^(histMaxShift+histSubBits+1) ns (about 10 days)
// land in the last bucket.
const (
	histSubBits  = 7
	histSub      = 1 << histSubBits
	histMaxShift = 42
	histBuckets  = (histMaxShift + 2) * histSub
)

// A histogram counts durations in log-linear buckets, in constant memory
// whatever the number of samples (an HdrHistogram with 2 significant
// digits, more or less). The zero value is empty and ready to use. It is
// not safe for concurrent use: each goroutine records into its own, and
// merge adds them up once they are done.
type histogram struct {
	counts   []uint64 // allocated on first record
	n        uint64
	sum      float64 // nanoseconds
	min, max int64
}

// bucketOf returns the bucket index of v nanoseconds; negative values
// count as 0.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	m := bits.Len64(uint64(v))
	if m <= histSubBits+1 {
		return int(v)
	}
	shift := m - histSubBits - 1
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return shift<<histSubBits + int(v>>shift)
}

// bucketRange returns the smallest and largest value of bucket b.
func bucketRange(b int) (lo, hi int64) {
	if b < 2*histSub {
		return int64(b), int64(b)
	}
	shift := b>>histSubBits - 1
	top := int64(b - shift<<histSubBits)
	lo = top << shift
	return lo, lo + 1<<shift - 1
}

// record adds one sample.
func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
		h.min, h.max = v, v
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds the samples of o to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
		h.min, h.max = o.min, o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1): the smallest
// recorded value such that at least q of all samples are at or below it,
// to within the bucket precision. The exact minimum and maximum are
// returned at the ends. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var cum uint64
	for b, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := bucketRange(b)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// A lockedHistogram is a histogram safe for concurrent use: the one of a
// publisher, shared by its in-flight workers (a histogram per worker would
// cost 44 KiB each, and fan-in runs have thousands of workers).
type lockedHistogram struct {
	mu sync.Mutex // guards h
	h  histogram
}

func (l *lockedHistogram) record(d time.Duration) {
	l.mu.Lock()
	l.h.record(d)
	l.mu.Unlock()
}

// Latency summarises a histogram in microseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

func micros(d time.Duration) float64 {
	return math.Round(float64(d)/1e2) / 10 // 0.1 µs resolution
}

// summary returns the percentiles of h, or nil if it is empty.
func (h *histogram) summary() *Latency {
	if h.n == 0 {
		return nil
	}
	return &Latency{
		Count: h.n,
		Min:   micros(time.Duration(h.min)),
		Mean:  micros(time.Duration(h.sum / float64(h.n))),
		P50:   micros(h.quantile(0.50)),
		P90:   micros(h.quantile(0.90)),
		P99:   micros(h.quantile(0.99)),
		P999:  micros(h.quantile(0.999)),
		Max:   micros(time.Duration(h.max)),
	}
}
