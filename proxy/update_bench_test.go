package proxy

import (
	"fmt"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// syntheticSnapshot has services of replicas endpoints each, n endpoints
// in all, every service on its own host.
func syntheticSnapshot(n, replicas int) discovery.Snapshot {
	var s discovery.Snapshot
	for i := 0; i < n/replicas; i++ {
		svc := discovery.Service{
			Name:     fmt.Sprintf("svc-%05d", i),
			Provider: "docker",
			Routes:   []discovery.Route{{Host: fmt.Sprintf("svc-%05d.example.com", i), Path: "/"}},
		}
		for r := 0; r < replicas; r++ {
			id := fmt.Sprintf("%064d", i*replicas+r)
			svc.Endpoints = append(svc.Endpoints, discovery.Endpoint{
				ID: id + ":8080", Name: fmt.Sprintf("svc-%05d-%d:8080", i, r),
				Address: fmt.Sprintf("10.%d.%d.%d:8080", (i*replicas+r)>>16&255, (i*replicas+r)>>8&255, (i*replicas+r)&255),
				Weight:  1,
			})
		}
		s.Services = append(s.Services, svc)
	}
	return s
}

// BenchmarkUpdate measures building and swapping a table when one backend
// of a large configuration changes, the common case of a Docker event:
// every other backend is reused.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			p, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			snaps := [2]discovery.Snapshot{syntheticSnapshot(n, 10), syntheticSnapshot(n, 10)}
			snaps[1].Services[0].Endpoints[0].State = discovery.Draining
			p.Update(snaps[0])
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Update(snaps[i%2])
			}
		})
	}
}

// BenchmarkUpdateFromEmpty measures the first table of a large
// configuration: every backend is new.
func BenchmarkUpdateFromEmpty(b *testing.B) {
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			snap := syntheticSnapshot(n, 10)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p, err := New(Config{})
				if err != nil {
					b.Fatal(err)
				}
				p.Update(snap)
			}
		})
	}
}
