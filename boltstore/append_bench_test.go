package boltstore

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppend measures the message writer alone: 50 publishers
// (client IDs, so up to 50 shards' logs) with window appends in flight
// in all, 64-byte payloads on one topic, for 1, 4 and 16 shards. It
// reports records/s, records per commit and page bytes written per
// record, the figures behind the default of n_shards (doc.go).
func BenchmarkAppend(b *testing.B) {
	for _, window := range []int{100, 1000} {
		for _, shards := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("window=%d/shards=%d", window, shards), func(b *testing.B) {
				s, err := Open(b.TempDir(), &Options{NShards: shards})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				payload := make([]byte, 64)
				meta := make([]byte, 12)
				sem := make(chan struct{}, window)
				var wg sync.WaitGroup
				before := s.DiskStats()
				start := time.Now()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					sem <- struct{}{}
					wg.Add(1)
					s.Append(fmt.Sprintf("pub%d", i%50), "bench/durable", meta, payload, func(_ RecordID, err error) {
						if err != nil {
							b.Error(err)
						}
						<-sem
						wg.Done()
					})
				}
				wg.Wait()
				b.StopTimer()
				after := s.DiskStats()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "recs/s")
				b.ReportMetric(float64(b.N)/float64(max(after.Commits-before.Commits, 1)), "recs/commit")
				b.ReportMetric(float64(after.BytesWritten-before.BytesWritten)/float64(b.N), "B/rec")
			})
		}
	}
}
