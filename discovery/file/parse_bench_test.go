package file

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse10k parses a file of 1,000 services of 10 backends each,
// the large configuration of bench/'s reconfiguration figures.
func BenchmarkParse10k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("services:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "  fill-%05d:\n    host: fill-%05d.test\n    backends: [", i, i)
		for j := range 10 {
			if j > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "127.0.0.1:%d", 10000+i*10+j)
		}
		sb.WriteString("]\n")
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		snap, err := Parse("bench.yaml", data)
		if err != nil || len(snap.Services) != 1000 {
			b.Fatalf("%d services, %v", len(snap.Services), err)
		}
	}
}
