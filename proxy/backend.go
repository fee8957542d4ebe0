package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
	"github.com/cutoverproxy/cutover/health"
)

// Reasons a backend is out of rotation, kept as bits of Backend.out so
// that Available is a single atomic load.
const (
	outDraining    uint32 = 1 << iota // the provider is stopping it
	outStarting                       // its own health check has not passed yet
	outUnhealthy                      // its own health check fails
	outRemoved                        // it is no longer in the configuration
	outDown                           // cutover's active health check does not pass
	outEjected                        // passive outlier detection took it out for a while
	outDeployDrain                    // a deploy is replacing it
)

// Backend is one endpoint of one service. It lives as long as the endpoint
// stays in the configuration with the same address, across any number of
// table swaps. All methods are safe for concurrent use.
type Backend struct {
	id       string                 // service + endpoint ID: the registry key
	endpoint string                 // the endpoint ID
	key      atomic.Pointer[string] // see Key
	service  string
	addr     string
	protocol discovery.Protocol
	tr       transport                    // makes conns
	conns    atomic.Pointer[backendConns] // made by the first request: see connections

	name atomic.Pointer[string]

	weight   atomic.Int32
	out      atomic.Uint32
	inflight atomic.Int64
	latency  atomic.Int64 // moving average, nanoseconds
	requests atomic.Uint64
	failures atomic.Uint64
	lastErr  atomic.Pointer[backendError]

	// Health: see health.go.
	proxy      *Proxy
	check      health.State
	checkCfg   health.Config // owned by Update
	build      uint64        // the last Update that used it; owned by Update
	rise       atomic.Int32  // checkCfg.Rise, for the API
	stats      atomic.Pointer[serviceStats]
	outlier    health.Outlier
	ejectTimer atomic.Pointer[time.Timer]
	// ejectedForStatus: the ejection was for 5xx answers, which a passing
	// probe does not end.
	ejectedForStatus atomic.Bool
	upSince          atomic.Int64 // unix nanos when it last became available, for slow start
	slowStart        atomic.Int64 // nanoseconds; zero means off

	// drain tells the backend's upgraded connections that it drains: see
	// drainSignal in tunnels.go.
	drain drainSignal
}

type backendError struct {
	at  time.Time
	err string
}

// newBackend returns the backend of endpoint ep of service, whose
// registry key is id (backendID); Update sets its name, weight and state.
func newBackend(p *Proxy, id, service string, ep discovery.Endpoint, tr transport) *Backend {
	b := &Backend{
		id:       id,
		endpoint: ep.ID,
		service:  service,
		addr:     ep.Address,
		protocol: tr.protocol,
		proxy:    p,
	}
	b.upSince.Store(time.Now().UnixNano())
	b.outlier.Configure(p.cfg.Outlier)
	b.tr = tr
	return b
}

// backendConns is how a backend sends requests: its round tripper (and
// HTTP/1.1 fast path, for a plain-HTTP backend) with their pools of
// connections.
type backendConns struct {
	rt        http.RoundTripper
	closeIdle func()
	end       context.CancelFunc // fails pending dials when the backend is removed
	fast      *h1                // the HTTP/1.1 fast path of a plain-HTTP backend, or nil
}

// connections returns the backend's connections, made by its first
// request: a table of thousands of backends is built without a round
// tripper, a dialer and a context each, and most of a large table may
// never see a request.
func (b *Backend) connections() *backendConns {
	if c := b.conns.Load(); c != nil {
		return c
	}
	return b.makeConnections()
}

// makeConnections makes the backend's connections for its first request,
// or returns those another first request made meanwhile.
func (b *Backend) makeConnections() *backendConns {
	life, end := context.WithCancel(context.Background())
	c := &backendConns{end: end}
	c.rt, c.closeIdle = b.tr.roundTripper(life, b.addr)
	if d, ok := c.rt.(dualTransport); ok {
		c.fast = d.fast
	}
	if !b.conns.CompareAndSwap(nil, c) {
		end() // another first request won; nothing was dialled through c
		return b.conns.Load()
	}
	if b.removed() {
		// remove may have looked before c was stored.
		c.shut()
	}
	return c
}

// closeIdle closes the backend's idle connections, if it has any.
func (b *Backend) closeIdle() {
	if c := b.conns.Load(); c != nil {
		c.closeIdle()
	}
}

// shut fails pending dials, closes idle connections and keeps none from
// now on. It may run more than once.
func (c *backendConns) shut() {
	c.end()
	if c.fast != nil {
		c.fast.close()
	}
	c.closeIdle()
}

func backendID(service, endpointID string) string { return service + "\x00" + endpointID }

// Available reports whether the backend may receive a new request.
func (b *Backend) Available() bool { return b.out.Load() == 0 }

// InFlight is the number of requests the backend is serving.
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// Latency is a moving average of the time to response headers.
func (b *Backend) Latency() time.Duration { return time.Duration(b.latency.Load()) }

// Weight is the backend's configured weight.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// Key is an opaque stable identifier, used in sticky cookies and by hash
// policies: the first 8 bytes of the SHA-256 of the registry key, in hex.
// It is computed at first use, so that a table of thousands of backends
// of round-robin services is built without thousands of hashes.
func (b *Backend) Key() string {
	if k := b.key.Load(); k != nil {
		return *k
	}
	var buf [128]byte
	sum := sha256.Sum256(append(buf[:0], b.id...))
	k := hex.EncodeToString(sum[:8])
	b.key.CompareAndSwap(nil, &k)
	return *b.key.Load()
}

// Name is the endpoint's human name; it follows renames.
func (b *Backend) Name() string { return *b.name.Load() }

func (b *Backend) setName(n string) {
	if old := b.name.Load(); old == nil || *old != n {
		b.name.Store(&n)
	}
}

// Address is the host:port the backend is dialled at.
func (b *Backend) Address() string { return b.addr }

// State names why the backend is out of rotation, or "up".
func (b *Backend) State() string {
	out := b.out.Load()
	switch {
	case out == 0:
		return "up"
	case out&outRemoved != 0:
		return "removed"
	case out&(outDraining|outDeployDrain) != 0:
		return "draining"
	case out&outUnhealthy != 0:
		return "unhealthy"
	case out&outStarting != 0:
		return "starting"
	case out&outDown != 0:
		return "down"
	default:
		return "ejected"
	}
}

// LastError returns the last transport error and when it happened.
func (b *Backend) LastError() (time.Time, string) {
	if e := b.lastErr.Load(); e != nil {
		return e.at, e.err
	}
	return time.Time{}, ""
}

// setProviderState applies what the provider says about the endpoint.
// Entering draining closes idle connections so that the backend sees no new
// request on them.
func (b *Backend) setProviderState(s discovery.EndpointState) {
	var bits uint32
	switch s {
	case discovery.Draining:
		bits = outDraining
	case discovery.Starting:
		bits = outStarting
	case discovery.Unhealthy:
		bits = outUnhealthy
	}
	const mask = outDraining | outStarting | outUnhealthy
	old := b.setBits(mask, bits)
	if bits&outDraining != 0 && old&outDraining == 0 {
		b.closeIdle()
	}
}

// remove takes the backend out for good: in-flight requests finish on
// their connections, idle ones are closed.
func (b *Backend) remove() {
	b.setBits(outRemoved, outRemoved)
	if c := b.conns.Load(); c != nil {
		c.shut()
	}
	if t := b.ejectTimer.Swap(nil); t != nil {
		t.Stop()
	}
}

// removed reports whether the backend left the configuration.
func (b *Backend) removed() bool { return b.out.Load()&outRemoved != 0 }

// setBits replaces the bits in mask with bits and returns the old value.
// A backend that becomes available starts its slow start.
func (b *Backend) setBits(mask, bits uint32) uint32 {
	for {
		old := b.out.Load()
		next := old&^mask | bits
		if b.out.CompareAndSwap(old, next) {
			if old != 0 && next == 0 {
				b.upSince.Store(time.Now().UnixNano())
			}
			if (old&drainBits == 0) != (next&drainBits == 0) {
				b.syncDrain()
			}
			return old
		}
	}
}

// observe records the time one request took to get response headers.
func (b *Backend) observe(d time.Duration) {
	for {
		old := b.latency.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/8
		}
		if b.latency.CompareAndSwap(old, next) {
			return
		}
	}
}

func (b *Backend) recordError(err error) {
	b.failures.Add(1)
	b.lastErr.Store(&backendError{at: time.Now(), err: err.Error()})
}

// Requests counts the attempts sent to the backend.
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Failures counts the attempts that failed without a response.
func (b *Backend) Failures() uint64 { return b.failures.Load() }
