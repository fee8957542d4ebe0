package proxy

import (
	"cmp"
	"slices"
	"strings"

	"github.com/cutoverproxy/cutover/balancer"
	"github.com/cutoverproxy/cutover/discovery"
	"github.com/cutoverproxy/cutover/health"
)

// emptyTable is the table of a Proxy before its first Update.
func emptyTable() *Table { return tableFor(discovery.Snapshot{}, &Table{}) }

// tableFor is an empty table with room for the services of s and the
// hosts of prev, which the next table mostly keeps: its maps do not grow
// while it is built (10,000 backends: a tenth of a build was rehashing).
func tableFor(s discovery.Snapshot, prev *Table) *Table {
	return &Table{
		exact:    make(map[string]*routeSet, len(prev.exact)),
		wildcard: make(map[string]*routeSet, len(prev.wildcard)),
		byName:   make(map[string]*Service, len(s.Services)),
		services: make([]*Service, 0, len(s.Services)),
	}
}

// Update builds a table from s and swaps it in. A service whose
// configuration is unchanged keeps its Service (its backends and its
// policy's state) from the table before, so that a change to one service
// of thousands costs the build of one (names are unique, as the Merger
// makes them; while a name repeats, nothing is kept). Backends whose
// service and endpoint ID are unchanged keep their object, state and
// connections; backends that left are taken out (in-flight requests
// finish) and their idle connections closed. Requests in flight keep the
// table they started with.
func (p *Proxy) Update(s discovery.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.table.Load()
	p.build++
	if len(p.backends) == 0 {
		// The first table, most likely: make room for all of it at once.
		n := 0
		for _, ds := range s.Services {
			n += len(ds.Endpoints)
		}
		p.backends = make(map[string]*Backend, n)
	}
	t := tableFor(s, prev)
	t.snapshot = s
	// Two services of one name (the Merger never gives any) share their
	// backends' IDs: with such a name in either table, every service is
	// built afresh, so that no kept Service loses a backend that the
	// other one's rebuild or removal took out.
	t.dupNames = duplicateNames(s.Services)
	targets := make([]health.Target, 0, p.targets)
	for _, ds := range s.Services {
		svc := prev.byName[ds.Name]
		if prev.dupNames || t.dupNames || svc == nil || !svc.config.Equal(ds) {
			svc = p.buildService(ds)
		}
		for _, b := range svc.backends {
			if tg, ok := b.target(ds.Options.Health); ok {
				targets = append(targets, tg)
			}
		}
		t.services = append(t.services, svc)
		t.byName[svc.name] = svc
		if ds.Options.Protocol == discovery.TCP {
			// Served by RunTCP (tcp.listen) and Passthrough (its hosts, by
			// SNI): HTTP routes to a TCP backend would only produce
			// garbage.
			continue
		}
		for _, r := range ds.Routes {
			t.add(r, svc)
		}
	}
	t.sortRoutes()
	p.table.Store(t) // only Update, under mu, stores: prev is the old table
	p.publishTCP(prev, t)
	for _, b := range p.replaced {
		b.remove()
	}
	p.replaced = p.replaced[:0]
	p.forget(prev, t)
	p.targets = len(targets)
	p.monitor.Set(targets)
}

// duplicateNames reports whether two services have one name.
func duplicateNames(services []discovery.Service) bool {
	byName := func(a, b discovery.Service) int { return strings.Compare(a.Name, b.Name) }
	if slices.IsSortedFunc(services, byName) { // as the Merger sorts them
		for i := 1; i < len(services); i++ {
			if services[i].Name == services[i-1].Name {
				return true
			}
		}
		return false
	}
	seen := make(map[string]bool, len(services))
	for _, ds := range services {
		if seen[ds.Name] {
			return true
		}
		seen[ds.Name] = true
	}
	return false
}

// forget removes the backends and service counters of old that the new
// table t no longer uses. Only services that were rebuilt or left are
// looked at: a kept service kept all its backends.
func (p *Proxy) forget(old, t *Table) {
	for _, svc := range old.services {
		next := t.byName[svc.name]
		if next == svc {
			continue
		}
		for _, b := range svc.backends {
			// A backend that this build used has its number; one whose
			// ID now names a new backend (its address changed) was
			// removed as replaced.
			if b.build != p.build && p.backends[b.id] == b {
				b.remove()
				delete(p.backends, b.id)
			}
		}
		if next == nil && p.stats[svc.name] != nil {
			delete(p.stats, svc.name)
			p.duration.DeleteLabelValues(svc.name)
		}
	}
}

func (p *Proxy) buildService(ds discovery.Service) *Service {
	svc := &Service{name: ds.Name, config: ds, stats: p.serviceStats(ds.Name), tls: ds.Options.TLS}
	if ds.Options.TLS.HSTS != "" {
		svc.hsts = []string{ds.Options.TLS.HSTS}
	}
	tr := transport{
		protocol:       ds.Options.Protocol,
		dialTimeout:    p.cfg.DialTimeout,
		headerTimeout:  p.cfg.ResponseHeaderTimeout,
		idleTimeout:    p.cfg.IdleConnTimeout,
		maxIdlePerHost: p.cfg.MaxIdleConnsPerHost,
		rootCAs:        p.cfg.BackendRootCAs,
	}
	views := make([]balancer.Backend, 0, len(ds.Endpoints))
	for _, ep := range ds.Endpoints {
		b := p.backend(ds.Name, ep, tr)
		b.stats.Store(svc.stats)
		b.configureHealth(ds.Options.Health)
		b.build = p.build
		svc.backends = append(svc.backends, b)
		views = append(views, b)
	}
	cfg := balancerConfig(ds.Options.Balance)
	policy, err := balancer.New(cfg, views)
	if err != nil {
		// Discovery validated the policy; this is a bug, not bad input.
		p.log.Error().Err(err).Str("service", ds.Name).Msg("build balancer; using round robin")
		policy, _ = balancer.New(balancer.Config{Kind: balancer.RoundRobin}, views)
	}
	svc.policy = policy
	if ds.Options.Balance.Policy == discovery.Cookie {
		svc.sticky = ds.Options.Balance.Name
	}
	return svc
}

// backend returns the registered backend for ep, or a new one when there
// is none or its address or protocol changed.
func (p *Proxy) backend(service string, ep discovery.Endpoint, tr transport) *Backend {
	id := backendID(service, ep.ID)
	b := p.backends[id]
	if b != nil && (b.addr != ep.Address || b.protocol != tr.protocol) {
		// Removed once the new table is in place: the old one still
		// serves until then.
		p.replaced = append(p.replaced, b)
		b = nil
	}
	if b == nil {
		b = newBackend(p, id, service, ep, tr)
		p.backends[id] = b
	}
	b.setName(ep.Name)
	b.weight.Store(int32(max(ep.Weight, 1)))
	b.setProviderState(ep.State)
	return b
}

func (p *Proxy) serviceStats(name string) *serviceStats {
	s := p.stats[name]
	if s == nil {
		s = &serviceStats{name: name, duration: p.duration.WithLabelValues(name)}
		p.stats[name] = s
	}
	return s
}

func (t *Table) add(r discovery.Route, svc *Service) {
	rs := t.routeSet(r.Host)
	rs.routes = append(rs.routes, pathRoute{path: r.Path, svc: svc})
}

// routeSet returns the route set of a host, creating it.
func (t *Table) routeSet(host string) *routeSet {
	if host == "" {
		if t.any == nil {
			t.any = &routeSet{}
		}
		return t.any
	}
	m, key := t.exact, host
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		m, key = t.wildcard, suffix
	}
	rs := m[key]
	if rs == nil {
		rs = &routeSet{}
		m[key] = rs
	}
	return rs
}

func (t *Table) sortRoutes() {
	sortSet := func(rs *routeSet) {
		if rs == nil {
			return
		}
		slices.SortStableFunc(rs.routes, func(a, b pathRoute) int {
			if c := cmp.Compare(len(b.path), len(a.path)); c != 0 {
				return c
			}
			return cmp.Compare(a.path, b.path)
		})
	}
	for _, rs := range t.exact {
		sortSet(rs)
	}
	for _, rs := range t.wildcard {
		sortSet(rs)
	}
	sortSet(t.any)
}
