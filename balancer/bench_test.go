package balancer

import (
	"testing"
)

// BenchmarkPick measures Pick over 8 backends, one of them down, from
// parallel goroutines that share the policy.
func BenchmarkPick(b *testing.B) {
	for _, cfg := range allKinds() {
		b.Run(cfg.Kind.String(), func(b *testing.B) {
			tbs, bs := newBackends(1, 2, 3, 4, 1, 2, 3, 4)
			tbs[2].down.Store(true)
			for i, tb := range tbs {
				tb.inFlight.Store(int64(i % 3))
				tb.latency.Store(int64(i+1) * 1e6)
			}
			cfg.Rand = nil // the default, lock-free source
			p := mustNew(cfg, bs)
			r := request("192.0.2.1:1234", "alice", "b3")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Pick(r, 0)
				}
			})
		})
	}
}
