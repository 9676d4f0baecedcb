package boltstore

import (
	"fmt"
	"testing"
)

// BenchmarkArchive_Add measures the archive's writer: messages of 64
// bytes on 100 topics, each added and committed in batches.
func BenchmarkArchive_Add(b *testing.B) {
	a, err := OpenArchive(b.TempDir(), &ArchiveOptions{Rules: []ArchiveRule{{Filter: "#"}}, Match: matchFilter})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	topics := make([]string, 100)
	for i := range topics {
		topics[i] = fmt.Sprintf("bench/%d", i)
	}
	meta, payload := make([]byte, 12), make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t := topics[i%len(topics)]
		a.Add(a.Rule(t), t, meta, payload, nil)
	}
	if err := a.Sync(); err != nil {
		b.Fatal(err)
	}
}
