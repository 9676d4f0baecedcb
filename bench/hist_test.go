package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogram_Quantiles(t *testing.T) {
	// Values below 256 ns have a bucket each, so quantiles are exact.
	var h histogram
	for v := 100; v >= 1; v-- { // order must not matter
		h.record(time.Duration(v))
	}
	cases := []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"p1 is the smallest", 0.01, 1},
		{"p50 is the 50th of 100", 0.50, 50},
		{"p90", 0.90, 90},
		{"p99", 0.99, 99},
		{"p99.9 rounds up to the last rank", 0.999, 100},
		{"p100 is the max", 1, 100},
		{"tiny q is the min", 1e-9, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.quantile(tc.q); got != tc.want {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestHistogram_NearestRank(t *testing.T) {
	cases := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"single sample", []time.Duration{42}, 0.5, 42},
		{"two samples, median is the lower", []time.Duration{10, 20}, 0.5, 10},
		{"two samples, p51 is the upper", []time.Duration{10, 20}, 0.51, 20},
		{"duplicates", []time.Duration{7, 7, 7, 9}, 0.75, 7},
		{"negative counts as zero", []time.Duration{-5, 3}, 0.5, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, s := range tc.samples {
				h.record(s)
			}
			if got := h.quantile(tc.q); got != tc.want {
				t.Errorf("quantile(%v) of %v = %v, want %v", tc.q, tc.samples, got, tc.want)
			}
		})
	}
}

func TestHistogram_Precision(t *testing.T) {
	// Against exact nearest-rank percentiles of sorted samples spanning
	// 1 µs to 10 s, the histogram is within its 1/256 bucket precision.
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	exact := make([]int64, n)
	var h histogram
	for i := range exact {
		v := int64(1000 * (1 << r.IntN(24)))
		v += r.Int64N(v)
		exact[i] = v
		h.record(time.Duration(v))
	}
	slices.Sort(exact)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		rank := int(q*n+0.999999) - 1
		want := float64(exact[rank])
		got := float64(h.quantile(q))
		if d := (got - want) / want; d > 1.0/256 || d < -1.0/256 {
			t.Errorf("quantile(%v) = %v, exact %v: off by %.3f%%", q, got, want, d*100)
		}
	}
	if got := h.quantile(1); int64(got) != exact[n-1] {
		t.Errorf("max = %v, want %v", got, exact[n-1])
	}
}

func TestBucketOf_RangeContainsValue(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	prev := -1
	for v := int64(0); v < 5000; v++ { // buckets are contiguous and ordered
		b := bucketOf(v)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: not contiguous", v, b, prev)
		}
		prev = b
	}
	for range 100000 {
		v := r.Int64N(1 << 50)
		b := bucketOf(v)
		lo, hi := bucketRange(b)
		if v < lo || v > hi {
			t.Fatalf("bucketOf(%d) = %d with range [%d, %d]", v, b, lo, hi)
		}
		if b < 0 || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of [0, %d)", v, b, histBuckets)
		}
	}
	if b := bucketOf(1 << 62); b != histBuckets-1 {
		t.Errorf("bucketOf(2^62) = %d, want the last bucket %d", b, histBuckets-1)
	}
}

func TestHistogram_Merge(t *testing.T) {
	var a, b, all histogram
	for v := 1; v <= 1000; v++ {
		d := time.Duration(v) * time.Microsecond
		all.record(d)
		if v%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	m.merge(&histogram{}) // empty: no-op
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("merged quantile(%v) = %v, want %v", q, m.quantile(q), all.quantile(q))
		}
	}
	if m.n != 1000 || m.min != int64(time.Microsecond) || m.max != int64(time.Millisecond) {
		t.Errorf("merged n=%d min=%d max=%d", m.n, m.min, m.max)
	}
}

func TestHistogram_Summary(t *testing.T) {
	var h histogram
	if h.summary() != nil || h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a summary")
	}
	for _, us := range []int{100, 200, 300, 400} {
		h.record(time.Duration(us) * time.Microsecond)
	}
	s := h.summary()
	if s.Count != 4 || s.Min != 100 || s.Max != 400 || s.Mean != 250 {
		t.Errorf("summary = %+v", s)
	}
	if s.P50 < 199 || s.P50 > 201 {
		t.Errorf("p50 = %v µs, want 200 within bucket precision", s.P50)
	}
}
