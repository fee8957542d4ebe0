package proxy

import (
	"github.com/cutoverproxy/cutover/balancer"
	"github.com/cutoverproxy/cutover/discovery"
)

// Service is a service of a table: its backends and the policy that picks
// among them. It is immutable; the backends' state changes through their
// atomics. Successive tables share a Service while its configuration is
// unchanged.
type Service struct {
	name     string
	config   discovery.Service
	backends []*Backend
	policy   balancer.Policy
	sticky   string // cookie name of a sticky policy, or ""
	stats    *serviceStats
	tls      discovery.TLSOptions
	hsts     []string // the Strict-Transport-Security header, or nil
}

// Name is the service's name.
func (s *Service) Name() string { return s.name }

// Config is the service's configuration from discovery.
func (s *Service) Config() discovery.Service { return s.config }

// Backends returns the service's backends. The slice must not be changed.
func (s *Service) Backends() []*Backend { return s.backends }

// Available reports how many backends may receive a request now.
func (s *Service) Available() int {
	n := 0
	for _, b := range s.backends {
		if b.Available() {
			n++
		}
	}
	return n
}

// balancerConfig maps a discovery policy to the balancer's.
func balancerConfig(b discovery.Balance) balancer.Config {
	kinds := [...]balancer.Kind{
		discovery.RoundRobin: balancer.RoundRobin,
		discovery.LeastConn:  balancer.LeastConn,
		discovery.P2C:        balancer.P2C,
		discovery.Random:     balancer.Random,
		discovery.HashSource: balancer.HashSource,
		discovery.HashHeader: balancer.HashHeader,
		discovery.Cookie:     balancer.Cookie,
	}
	return balancer.Config{Kind: kinds[b.Policy], Name: b.Name}
}
