package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/health"
)

// Defaults of Config.
const (
	DefaultDialTimeout           = 2 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleConnTimeout       = 4 * time.Second
	DefaultMaxIdleConnsPerHost   = 256
	DefaultAttempts              = 3
	DefaultDrainGrace            = 25 * time.Second
	DefaultCloseWait             = time.Second
	maxAttempts                  = 10
)

// Config configures a Proxy. The zero value is usable.
type Config struct {
	// DialTimeout bounds connecting to a backend; a backend that does not
	// accept in time is skipped for another. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// headers after the request was sent. Zero means
	// DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes idle backend connections; keep it below the
	// backends' own keep-alive timeout (Node.js and Apache: 5s) so that the
	// proxy, not the backend, closes an idle connection. Zero means
	// DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is the number of idle connections kept per
	// backend. Zero means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// Attempts is the most backends one request is tried on. Zero means
	// DefaultAttempts; 1 turns retries off.
	Attempts int
	// Logger receives errors and, with AccessLog, one line per request.
	// The zero value logs nothing.
	Logger zerolog.Logger
	// AccessLog logs every request at info level.
	AccessLog bool
	// Registerer receives the data-path metrics. Nil means none are
	// registered.
	Registerer prometheus.Registerer
	// HTTPSPort is the port of the HTTPS listener, for redirects to it.
	// Zero means 443 (no port in the redirect).
	HTTPSPort int
	// BackendRootCAs verifies the certificates of protocol https
	// backends. Nil means the system's roots.
	BackendRootCAs *x509.CertPool
	// Outlier configures passive outlier detection. The zero value means
	// health's defaults: 5 consecutive failures eject for 30s, doubling
	// up to 300s.
	Outlier health.OutlierConfig
	// TCPHost is the host that RunTCP's listeners listen on (":PORT" of
	// tcp.listen=PORT), e.g. "127.0.0.1". Empty means all interfaces.
	TCPHost string
	// DrainGrace is how long a connection that outlives its request (a
	// WebSocket or another upgraded connection, or a TCP connection of
	// tcp.listen or TLS passthrough) may stay open once its backend drains
	// (the provider is stopping it, a deploy replaces it, or it left the
	// configuration). Then the proxy closes it: a WebSocket with a close
	// frame 1001 (going away) to both ends. Zero means DefaultDrainGrace,
	// which is below a deploy's default drain timeout (30s) so that a deploy
	// sees its WebSockets closed cleanly before it stops the container.
	DrainGrace time.Duration
	// CloseWait bounds the clean close of a WebSocket that the proxy
	// ends (its backend drained, or Shutdown): finishing the frames in
	// progress and getting both peers' close frames take that long at
	// most, then both connections are closed regardless. Zero means
	// DefaultCloseWait.
	CloseWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = DefaultDrainGrace
	}
	if c.CloseWait == 0 {
		c.CloseWait = DefaultCloseWait
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("dial timeout %s: want a positive duration", c.DialTimeout)
	case c.ResponseHeaderTimeout < 0:
		return fmt.Errorf("response header timeout %s: want a positive duration", c.ResponseHeaderTimeout)
	case c.IdleConnTimeout < 0:
		return fmt.Errorf("idle connection timeout %s: want a positive duration", c.IdleConnTimeout)
	case c.MaxIdleConnsPerHost < 0:
		return fmt.Errorf("max idle connections per backend %d: want 0 or more", c.MaxIdleConnsPerHost)
	case c.Attempts < 0 || c.Attempts > maxAttempts:
		return fmt.Errorf("attempts %d: want 1 to %d", c.Attempts, maxAttempts)
	case c.DrainGrace < 0:
		return fmt.Errorf("drain grace %s: want a positive duration", c.DrainGrace)
	case c.CloseWait < 0:
		return fmt.Errorf("websocket close wait %s: want a positive duration", c.CloseWait)
	}
	return c.Outlier.Validate()
}

// Proxy is the HTTP reverse proxy. It serves requests with the current
// Table; Update replaces the table. ServeHTTP is safe for concurrent use
// and lock-free; Update calls are serialized. ServeHTTP panics with
// http.ErrAbortHandler when the client went away or a response was cut
// short, so that the server aborts the connection rather than end the
// response as if it were whole: a handler that wraps it must let that
// panic through.
type Proxy struct {
	cfg      Config
	log      zerolog.Logger
	table    atomic.Pointer[Table]
	unrouted *serviceStats
	ids      *requestIDs
	monitor  *health.Monitor
	tunnels  tunnels
	tcp      tcpState                         // TCP listeners and passthrough routes: see tcp.go
	holds    atomic.Pointer[map[string]*hold] // copy on write, under mu
	duration *prometheus.HistogramVec

	mu       sync.Mutex // serializes Update; guards the registries below
	backends map[string]*Backend
	stats    map[string]*serviceStats
	replaced []*Backend // backends replaced by the Update in progress
	build    uint64     // number of the Update in progress
	targets  int        // health targets of the last Update: room for the next
}

// New returns a Proxy with an empty table.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Proxy{
		cfg:      cfg,
		log:      cfg.Logger,
		backends: map[string]*Backend{},
		stats:    map[string]*serviceStats{},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its response, by service.",
			Buckets: prometheus.DefBuckets,
		}, []string{"service"}),
	}
	p.unrouted = &serviceStats{}
	p.ids = newRequestIDs()
	p.monitor = health.NewMonitor(health.MonitorConfig{RootCAs: cfg.BackendRootCAs})
	p.table.Store(emptyTable())
	p.holds.Store(&map[string]*hold{})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{newCollector(p), p.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register proxy metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Run runs the active health checks and the sweep of idle backend
// connections until ctx ends. Backends of services with a health check
// stay out of rotation until Run probes them.
func (p *Proxy) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.sweepIdle(ctx) })
	defer wg.Wait()
	return p.monitor.Run(ctx)
}

// sweepIdle closes, every idle timeout, the fast path's connections that
// were idle longer, so that connections the backends closed do not linger.
func (p *Proxy) sweepIdle(ctx context.Context) {
	tick := time.NewTicker(p.cfg.IdleConnTimeout)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, svc := range p.table.Load().services {
			for _, b := range svc.backends {
				if c := b.conns.Load(); c != nil && c.fast != nil {
					c.fast.sweep()
				}
			}
		}
	}
}

// Table returns the table in use.
func (p *Proxy) Table() *Table { return p.table.Load() }

// Backend returns the backend of the named service with the given
// endpoint ID in the current table, or nil.
func (p *Proxy) Backend(service, endpointID string) *Backend {
	svc := p.table.Load().Service(service)
	if svc == nil {
		return nil
	}
	id := backendID(service, endpointID)
	for _, b := range svc.backends {
		if b.id == id {
			return b
		}
	}
	return nil
}

var (
	errNoRoute   = errors.New("no route")
	errNoBackend = errors.New("no available backend")
	errBadPath   = errors.New("path with dot segments")
	errBadTarget = errors.New("query with a space")
	errConnect   = errors.New("CONNECT method")
)
