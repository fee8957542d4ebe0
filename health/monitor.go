package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultJitter is MonitorConfig.Jitter's default.
const DefaultJitter = 0.1

// MonitorConfig configures a Monitor. Its zero value is ready to use.
type MonitorConfig struct {
	// Jitter is the fraction of the interval by which each wait between
	// two probes of a target varies at random, so that the probes of
	// targets set at the same moment spread out. Zero means DefaultJitter;
	// negative means none; values above 1 count as 1.
	Jitter float64
	// Dial opens the connections of both HTTP and TCP probes; it must
	// honour the context's deadline. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock of Result.At and Result.Duration. Nil means
	// time.Now.
	Now func() time.Time
	// RootCAs verify the certificates of targets probed over HTTPS
	// (Config.HTTPS). Nil means the system's roots.
	RootCAs *x509.CertPool
}

// Monitor runs the active probes: one loop per target, while Run runs.
// Set and Run are safe for concurrent use.
type Monitor struct {
	jitter float64
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	now    func() time.Time
	// transport of the HTTP probes, keep-alives off: a probe should
	// take the path a new request takes (accept included), no idle
	// connection outlives its probe (nothing to close when a target goes
	// away), and no probe fails for a keep-alive connection that the
	// backend closed just as it was reused. One new connection per
	// target every couple of seconds costs nothing worth saving.
	transport *http.Transport

	mu      sync.Mutex
	want    map[string]Target        // from the last Set, defaults applied
	running bool                     // Run is running, until its loops have exited
	ctx     context.Context          // Run's context; nil when loops must not start
	loops   map[string]*loop         // by target ID
	exiting map[string]chan struct{} // by target ID: the done channel of a stopped loop that may still run
	wg      sync.WaitGroup           // the loops
}

// loop is the probe loop of one target.
type loop struct {
	// target is fixed but for its Observer, which Set may replace.
	target atomic.Pointer[Target]
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has exited
}

// NewMonitor returns a Monitor with no targets. It starts no goroutine.
func NewMonitor(cfg MonitorConfig) *Monitor {
	m := &Monitor{
		jitter:  cfg.Jitter,
		dial:    cfg.Dial,
		now:     cfg.Now,
		want:    map[string]Target{},
		loops:   map[string]*loop{},
		exiting: map[string]chan struct{}{},
	}
	switch {
	case m.jitter == 0:
		m.jitter = DefaultJitter
	case m.jitter < 0:
		m.jitter = 0
	case m.jitter > 1:
		m.jitter = 1
	}
	if m.dial == nil {
		m.dial = (&net.Dialer{}).DialContext
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.transport = &http.Transport{
		Proxy:                  nil, // never an HTTP_PROXY from the environment
		DialContext:            m.dial,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
	}
	return m
}

// Set replaces the set of targets. It does not block: loops are started
// and stopped, never waited for. While Run runs:
//   - a target with a new ID starts a loop that probes at once;
//   - a target whose ID, Address, Config (with defaults applied) and State
//     are unchanged keeps its loop, and its timing; a new Observer is
//     handed to that loop;
//   - a target that is gone, or changed otherwise, has its loop stopped;
//     a changed one gets a new loop that probes as soon as the old loop has
//     exited, so two loops never use one State at the same time.
//
// A target with Mode Off gets no loop, and its State is left alone: the
// caller decides what Off means for it. Targets set while Run is not
// running are probed when it starts. Of several targets with one ID, the
// last wins.
//
// After Set returns, a stopped loop may still deliver the result of a
// probe it had finished; Run waits for every loop.
func (m *Monitor) Set(targets []Target) {
	want := make(map[string]Target, len(targets))
	for _, t := range targets {
		t.Config = t.Config.WithDefaults()
		want[t.ID] = t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.want = want
	if m.ctx != nil {
		m.reconcile()
	}
}

// Run runs the probe loops until ctx ends, then stops them and returns
// nil once all have exited. It returns an error at once if another Run is
// running. Run may be called again after it returned.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("health: Monitor.Run called while another Run is running")
	}
	m.running, m.ctx = true, ctx
	m.reconcile()
	m.mu.Unlock()

	<-ctx.Done()

	m.mu.Lock()
	for id, l := range m.loops {
		m.stop(id, l)
	}
	m.ctx = nil
	m.mu.Unlock()
	m.wg.Wait()
	m.transport.CloseIdleConnections()
	m.mu.Lock()
	// A loop that saw ctx end before stop recorded it left an entry.
	clear(m.exiting)
	m.running = false
	m.mu.Unlock()
	return nil
}

// reconcile makes the loops match m.want. m.mu must be held and m.ctx set.
func (m *Monitor) reconcile() {
	for id, l := range m.loops {
		t, ok := m.want[id]
		cur := l.target.Load()
		if ok && t.State == nil {
			t.State = cur.State
			m.want[id] = t
		}
		if ok && t.Config.Mode != Off && t.Address == cur.Address && t.Config == cur.Config && t.State == cur.State {
			l.target.Store(&t)
			continue
		}
		m.stop(id, l)
	}
	for id, t := range m.want {
		if _, ok := m.loops[id]; ok || t.Config.Mode == Off {
			continue
		}
		if t.State == nil {
			t.State = new(State)
			m.want[id] = t
		}
		m.start(t)
	}
}

// start starts the loop of t. m.mu must be held and m.ctx set.
func (m *Monitor) start(t Target) {
	ctx, cancel := context.WithCancel(m.ctx)
	l := &loop{cancel: cancel, done: make(chan struct{})}
	l.target.Store(&t)
	prev := m.exiting[t.ID]
	m.loops[t.ID] = l
	m.wg.Go(func() {
		defer m.exited(t.ID, l)
		m.run(ctx, l, prev)
	})
}

// stop stops the loop of id without waiting for it. m.mu must be held.
func (m *Monitor) stop(id string, l *loop) {
	l.cancel()
	delete(m.loops, id)
	m.exiting[id] = l.done
}

// exited is the last thing a loop does.
func (m *Monitor) exited(id string, l *loop) {
	l.cancel()
	close(l.done)
	m.mu.Lock()
	if m.exiting[id] == l.done {
		delete(m.exiting, id)
	}
	m.mu.Unlock()
}

// run is the probe loop: wait for the previous loop of the same target to
// exit, then probe, report, and wait an interval with jitter, until ctx
// ends.
func (m *Monitor) run(ctx context.Context, l *loop, prev <-chan struct{}) {
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return
		}
	}
	t := l.target.Load()
	p := m.newProber(t.Address, t.Config)
	started, passed := time.Now(), false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r := p.probe(ctx)
		if ctx.Err() != nil {
			return // stopped: the result says nothing about the target
		}
		t.State.record(r)
		up, changed := t.State.Observe(r.OK, t.Config.Rise, t.Config.Fall)
		if obs := l.target.Load().Observer; obs != nil {
			obs.Probed(r, up, changed)
		}
		passed = passed || r.OK
		d := jittered(nextProbe(t.Config.Interval, passed || t.State.Up(), time.Since(started)), m.jitter, rand.Float64())
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// jittered spreads d by the fraction j: r in [0, 1) maps to
// [d×(1-j), d×(1+j)).
// A newcomer's first probe usually runs before its app listens. Until it
// passes once, it is probed every StartupInterval (when that is shorter
// than its interval) for up to StartupWindow, so that it is admitted soon
// after it is ready, not one whole interval later.
const (
	StartupInterval = 250 * time.Millisecond
	StartupWindow   = time.Minute
)

// nextProbe is the time to the next probe of a target.
func nextProbe(interval time.Duration, passed bool, age time.Duration) time.Duration {
	if !passed && age < StartupWindow {
		return min(interval, StartupInterval)
	}
	return interval
}

func jittered(d time.Duration, j, r float64) time.Duration {
	return time.Duration(float64(d) * (1 - j + 2*j*r))
}
