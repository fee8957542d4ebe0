package file

import (
	"fmt"
	"strings"
	"testing"
)

// file10k is a file of 1,000 services of 10 backends each, the large
// configuration of bench/'s reconfiguration figures.
func file10k() []byte {
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
	return []byte(sb.String())
}

// BenchmarkParse10k parses the file of file10k whole.
func BenchmarkParse10k(b *testing.B) {
	data := file10k()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		snap, err := Parse("bench.yaml", data)
		if err != nil || len(snap.Services) != 1000 {
			b.Fatalf("%d services, %v", len(snap.Services), err)
		}
	}
}

// BenchmarkReparse10kOneChange parses the file of file10k through the
// reparser with the backend of one service changed: each iteration reads
// the version that the previous one did not, as a watch does after an edit.
func BenchmarkReparse10kOneChange(b *testing.B) {
	base := file10k()
	changed := []byte(strings.Replace(string(base), "127.0.0.1:15000,", "127.0.0.1:25000,", 1))
	r := &reparser{}
	if _, err := r.parse("bench.yaml", base); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(base)))
	b.ReportAllocs()
	versions := [2][]byte{changed, base}
	i := 0
	for b.Loop() {
		snap, err := r.parse("bench.yaml", versions[i%2])
		if err != nil || len(snap.Services) != 1000 || r.full || r.parsed != 1 {
			b.Fatalf("%d services, %v; full %v, parsed %d", len(snap.Services), err, r.full, r.parsed)
		}
		i++
	}
}
