package discovery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Sink receives the results of one provider. Update hands over a full
// snapshot that replaces the provider's previous one; Fail reports a
// configuration that could not be used (the previous snapshot stays in
// effect). Both are safe for concurrent use and never block for long.
type Sink interface {
	Update(Snapshot)
	Fail(error)
}

// Provider produces snapshots until its context ends.
type Provider interface {
	// Name is the provider's name in metrics, logs and problems.
	Name() string
	// Run reports the provider's state to sink, first at once and then on
	// every change, until ctx is done.
	Run(ctx context.Context, sink Sink) error
}

// MergerConfig configures a Merger.
type MergerConfig struct {
	// Providers are the names of the providers, in order of precedence: when
	// two define the same service or route, the earlier one wins.
	Providers []string
	// OnReport, if set, is called for every Update (err nil) and Fail of a
	// provider, before the merge.
	OnReport func(provider string, err error)
}

// Merger combines the newest snapshot of every provider. Updates are
// coalesced through a one-slot signal: a burst of updates leads to one
// merge of the newest state, and a merge equal to the last applied one is
// dropped.
type Merger struct {
	cfg    MergerConfig
	notify chan struct{}
	ready  atomic.Bool

	mu     sync.Mutex
	latest map[string]*Snapshot
}

// NewMerger returns a Merger for the named providers.
func NewMerger(cfg MergerConfig) *Merger {
	return &Merger{cfg: cfg, notify: make(chan struct{}, 1), latest: map[string]*Snapshot{}}
}

// Sink returns the sink of the named provider.
func (m *Merger) Sink(provider string) Sink { return sink{m, provider} }

type sink struct {
	m    *Merger
	name string
}

func (s sink) Update(snap Snapshot) {
	if s.m.cfg.OnReport != nil {
		s.m.cfg.OnReport(s.name, nil)
	}
	snap.Sort()
	s.m.mu.Lock()
	s.m.latest[s.name] = &snap
	s.m.mu.Unlock()
	select {
	case s.m.notify <- struct{}{}:
	default:
	}
}

func (s sink) Fail(err error) {
	if s.m.cfg.OnReport != nil {
		s.m.cfg.OnReport(s.name, err)
	}
}

// Ready reports whether every provider has delivered a snapshot and the
// merge of them has been applied.
func (m *Merger) Ready() bool { return m.ready.Load() }

// Run calls apply with each new merged snapshot until ctx is done. apply runs
// on Run's goroutine, one call at a time.
func (m *Merger) Run(ctx context.Context, apply func(Snapshot)) error {
	var last Snapshot
	applied := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.notify:
		}
		merged, complete := m.merge()
		if !applied || !merged.Equal(last) {
			apply(merged)
			last, applied = merged, true
		}
		if complete {
			m.ready.Store(true)
		}
	}
}

// merge combines the latest snapshots and reports whether every provider
// has delivered one.
func (m *Merger) merge() (Snapshot, bool) {
	m.mu.Lock()
	snaps := make([]*Snapshot, 0, len(m.cfg.Providers))
	complete := true
	for _, p := range m.cfg.Providers {
		s := m.latest[p]
		if s == nil {
			complete = false
			continue
		}
		snaps = append(snaps, s)
	}
	m.mu.Unlock()
	return Merge(snaps...), complete
}

// Merge combines snapshots in order of precedence. A service name or a
// route (host and path) that an earlier snapshot already has is dropped from
// the later one and reported as a Problem.
func Merge(snaps ...*Snapshot) Snapshot {
	n := 0
	for _, s := range snaps {
		n += len(s.Services)
	}
	out := Snapshot{Services: make([]Service, 0, n)}
	owner := make(map[string]string, n)
	for _, s := range snaps {
		out.Problems = append(out.Problems, s.Problems...)
		for _, svc := range s.Services {
			if prev, ok := owner[svc.Name]; ok {
				out.Problems = append(out.Problems, Problem{
					Provider: svc.Provider, Source: "service " + svc.Name,
					Message: fmt.Sprintf("service name is already defined by provider %s; this definition is ignored: rename one of them", prev),
				})
				continue
			}
			owner[svc.Name] = svc.Provider
			// The inputs (which the Merger keeps, and earlier merged
			// snapshots share) are never written: sorted copies a slice
			// out of order (the Merger's sinks sorted them already), and
			// DropRouteConflicts copies the routes it drops from.
			out.Services = append(out.Services, svc.sorted())
		}
	}
	out.Services, out.Problems = DropRouteConflicts(out.Services, out.Problems)
	slices.SortFunc(out.Services, compareServices)
	return out
}

// DropRouteConflicts removes every route that an earlier service in the
// slice already claims (same host and path), and every tcp.listen port
// that an earlier service listens on, and reports each as a Problem. The
// routes of a TCP service claim nothing (it is reached by its port),
// unless it passes TLS through by server name.
// A route listed twice by one service is no conflict. The slices' backing
// arrays are reused; routes are copied before change.
func DropRouteConflicts(services []Service, problems []Problem) ([]Service, []Problem) {
	claimed := make(map[Route]int, len(services)) // route → index of the service that has it
	ports := map[int]int{}                        // tcp.listen port → index of the service that has it
	for i := range services {
		svc := &services[i]
		if port := svc.Options.TCP.Listen; port != 0 {
			if owner, taken := ports[port]; taken {
				problems = append(problems, Problem{
					Provider: svc.Provider, Source: "service " + svc.Name, Key: "tcp.listen",
					Message: fmt.Sprintf("port %d is already the listener of service %s; this service gets none: choose another port", port, services[owner].Name),
				})
				svc.Options.TCP.Listen = 0
			} else {
				ports[port] = i
			}
		}
		if svc.Options.Protocol == TCP && !svc.Options.TLS.Passthrough {
			continue // reached by its port: its routes are no HTTP routes
		}
		var kept []Route
		for j, r := range svc.Routes {
			owner, taken := claimed[r]
			if !taken || owner == i {
				claimed[r] = i
				if kept != nil {
					kept = append(kept, r)
				}
				continue
			}
			if kept == nil {
				kept = append([]Route{}, svc.Routes[:j]...)
			}
			problems = append(problems, Problem{
				Provider: svc.Provider, Source: "service " + svc.Name, Key: "host/path",
				Message: fmt.Sprintf("route %s is already served by service %s; this route is ignored", r, services[owner].Name),
			})
		}
		if kept != nil {
			svc.Routes = kept
		}
	}
	return services, problems
}

func (r Route) String() string {
	h := r.Host
	if h == "" {
		h = "(any host)"
	}
	return h + r.Path
}
