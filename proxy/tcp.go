package proxy

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cutoverproxy/cutover/discovery"
)

// TCP services reach cutover two ways: on a port of their own (tcp.listen,
// served by RunTCP in tcp_listen.go) and, with tls.passthrough, by SNI on
// the HTTPS listener (Passthrough in passthrough.go). Both hand a client
// connection to serveTCP (tcp_conn.go), which picks and dials a backend
// and copies bytes both ways.
//
// Update publishes what the TCP side needs of each new table as a
// tcpRoutes and then closes the channel that RunTCP waits on: the HTTP
// request path reads neither.

// tcpState is the Proxy's TCP side: written by Update and RunTCP, read
// lock-free by everything else.
type tcpState struct {
	routes    atomic.Pointer[tcpRoutes]
	changed   atomic.Pointer[chan struct{}] // closed and replaced by every Update
	listeners atomic.Pointer[[]TCPListener] // RunTCP's last pass
	running   atomic.Bool                   // RunTCP runs
}

// tcpRoutes is what the TCP side reads of one table. It is immutable.
type tcpRoutes struct {
	listens  []tcpListen         // services with tcp.listen, by name
	ports    map[int]*Service    // port → the service that gets its listener
	exact    map[string]*Service // TLS server name → passthrough service, or nil: terminate
	wildcard map[string]*Service // "example.com" for "*.example.com", likewise
}

// tcpListen is the tcp.listen port of one service.
type tcpListen struct {
	port    int
	svc     *Service
	takenBy string // another service (earlier by name) has the port
}

var noTCPRoutes = &tcpRoutes{}

// loadTCPRoutes returns the routes of the current table.
func (p *Proxy) loadTCPRoutes() *tcpRoutes {
	if r := p.tcp.routes.Load(); r != nil {
		return r
	}
	return noTCPRoutes
}

// publishTCP hands the table just swapped in to the TCP side and wakes
// RunTCP. Called by Update, which serializes the calls.
func (p *Proxy) publishTCP(old, t *Table) {
	p.tcp.routes.Store(newTCPRoutes(t))
	p.warnUnreachableTCP(old, t)
	next := make(chan struct{})
	if prev := p.tcp.changed.Swap(&next); prev != nil {
		close(*prev)
	}
}

// tcpChanged returns a channel that the next Update closes. Load it before
// the routes it guards so that no update goes unnoticed.
func (p *Proxy) tcpChanged() <-chan struct{} {
	for {
		if ch := p.tcp.changed.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		p.tcp.changed.CompareAndSwap(nil, &ch)
	}
}

func newTCPRoutes(t *Table) *tcpRoutes {
	r := &tcpRoutes{ports: map[int]*Service{}, exact: map[string]*Service{}, wildcard: map[string]*Service{}}
	for _, svc := range t.services {
		o := svc.config.Options
		if o.Protocol == discovery.TCP && o.TCP.Listen > 0 {
			l := tcpListen{port: o.TCP.Listen, svc: svc}
			if owner := r.ports[l.port]; owner != nil {
				l.takenBy = owner.name
			} else {
				r.ports[l.port] = svc
			}
			r.listens = append(r.listens, l)
		}
		for _, rt := range svc.config.Routes {
			r.addServerName(rt.Host, svc)
		}
	}
	return r
}

// addServerName records which service a TLS connection for host goes to.
// Hosts of terminated (HTTP) routes are recorded too, as nil, so that the
// most specific name wins as it does for HTTP: a passthrough
// *.example.com does not take api.example.com from a terminated route.
// When a passthrough route and a terminated one share a host, passthrough
// wins: the server name carries no path to tell them apart.
func (r *tcpRoutes) addServerName(host string, svc *Service) {
	pass := svc.tls.Passthrough
	if host == "" || !pass && svc.config.Options.Protocol == discovery.TCP {
		// A TCP service's hosts mean nothing without passthrough.
		return
	}
	m, key := r.exact, host
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		m, key = r.wildcard, suffix
	}
	cur, seen := m[key]
	switch {
	case !seen && pass:
		m[key] = svc
	case !seen:
		m[key] = nil
	case pass && cur == nil:
		m[key] = svc
	}
}

// passthrough returns the passthrough service for a TLS server name (SNI),
// or nil when the connection is for the HTTPS server: the exact name, else
// the longest wildcard decides.
func (r *tcpRoutes) passthrough(serverName string) *Service {
	var buf [maxHost]byte
	h, ok := normalizeHost(serverName, &buf)
	if !ok {
		return nil
	}
	if svc, found := r.exact[h]; found {
		return svc
	}
	for i := strings.IndexByte(h, '.'); i >= 0; {
		if svc, found := r.wildcard[h[i+1:]]; found {
			return svc
		}
		j := strings.IndexByte(h[i+1:], '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return nil
}

// servesTCP reports whether the service takes TCP connections, for its
// TCP metrics.
func (s *Service) servesTCP() bool {
	return s.config.Options.Protocol == discovery.TCP || s.tls.Passthrough
}

// warnUnreachableTCP logs, once per change of its options, a service that
// no connection can reach.
func (p *Proxy) warnUnreachableTCP(old, t *Table) {
	for _, svc := range t.services {
		o := svc.config.Options
		if prev := old.Service(svc.name); prev != nil && prev.config.Options == o && slices.Equal(prev.config.Routes, svc.config.Routes) {
			continue
		}
		switch {
		case o.Protocol == discovery.TCP && o.TCP.Listen == 0 && !o.TLS.Passthrough:
			p.log.Warn().Str("service", svc.name).
				Msg("protocol tcp without tcp.listen or tls.passthrough: the service gets no connections; set tcp.listen=PORT")
		case o.TLS.Passthrough && !hasHost(svc):
			p.log.Warn().Str("service", svc.name).
				Msg("tls.passthrough without host: TLS connections are routed by server name only; set host")
		case !svc.servesTCP() && (o.TCP.IdleTimeout != 0 || o.TCP.ProxyProtocol != ""):
			p.log.Warn().Str("service", svc.name).
				Msg("tcp.idle-timeout and proxy-protocol apply to protocol tcp and tls.passthrough only: ignored for this service")
		}
	}
}

func hasHost(svc *Service) bool {
	for _, r := range svc.config.Routes {
		if r.Host != "" {
			return true
		}
	}
	return false
}
