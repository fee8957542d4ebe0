package acme

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
)

// idleWait is how long the dispatcher sleeps with nothing scheduled;
// SetHosts wakes it earlier.
const idleWait = 24 * time.Hour

// Run loads, orders and renews certificates until ctx ends, then waits
// for its goroutines (Config.Concurrency workers) and returns nil. An
// order in flight is abandoned at once, except that the ACME library's
// wait for an order being finalized ends only after up to 30 seconds.
// Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("acme: Run called twice")
	}
	m.log.Info().Str("ca", m.cfg.CA).Str("dir", m.store.dir).Msg("acme: manager running")
	c := newClient(ctx, m)
	defer c.close()

	jobs := make(chan *host)
	var wg sync.WaitGroup
	defer wg.Wait()
	for range m.cfg.Concurrency {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case h := <-jobs:
					m.process(ctx, c, h)
				}
			}
		})
	}
	return m.dispatch(ctx, jobs)
}

// dispatch hands due hosts to the workers, one at a time, and sleeps
// until the next one is due or SetHosts or a worker wakes it.
func (m *Manager) dispatch(ctx context.Context, jobs chan<- *host) error {
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	for {
		h, wait := m.next(time.Now())
		if h != nil {
			select {
			case jobs <- h:
				continue
			case <-ctx.Done():
				m.release(h.name)
				return nil
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// next marks the first due host busy and returns it, or returns how long
// until one is due.
func (m *Manager) next(now time.Time) (*host, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first *host
	for _, h := range m.hosts {
		if !m.busy[h.name] && (first == nil || cmpDue(h, first) < 0) {
			first = h
		}
	}
	if first == nil {
		return nil, idleWait
	}
	if d := first.due.Sub(now); d > 0 {
		return nil, d
	}
	m.busy[first.name] = true
	return first, 0
}

// cmpDue orders hosts by their next work, then by name.
func cmpDue(a, b *host) int {
	return cmp.Or(a.due.Compare(b.due), cmp.Compare(a.name, b.name))
}

// release ends a worker's hold on a name and wakes the dispatcher, which
// may have skipped it, or a new host of the same name, while it was busy.
func (m *Manager) release(name string) {
	m.mu.Lock()
	delete(m.busy, name)
	m.mu.Unlock()
	m.signal()
}

// process does the due work of h, which the calling worker holds: load
// the stored certificate once, then order one if none is usable or the
// served one is due for renewal.
func (m *Manager) process(ctx context.Context, c *client, h *host) {
	defer m.release(h.name)
	if !h.loaded {
		m.load(h)
	}
	if time.Now().Before(h.due) {
		return
	}
	m.order(ctx, c, h)
}

func (m *Manager) load(h *host) {
	cert, err := m.store.loadCert(h.name, time.Now())
	if err != nil {
		m.log.Warn().Err(err).Str("host", h.name).Msg("acme: stored certificate unusable, ordering a new one")
	}
	m.mu.Lock()
	h.loaded = true
	if cert != nil {
		h.cert = cert
		h.due = renewAt(cert.Leaf.NotBefore, cert.Leaf.NotAfter, m.cfg.RenewWindow)
		m.publishLocked()
	}
	m.mu.Unlock()
	if cert != nil {
		m.log.Info().Str("host", h.name).Time("not_after", cert.Leaf.NotAfter).Time("renew_at", h.due).Msg("acme: stored certificate loaded")
		m.emit(Event{Host: h.name, Kind: EventLoaded, NotAfter: cert.Leaf.NotAfter})
	}
}

// order obtains a certificate for h and schedules its renewal, or the
// retry of a failure. A failure is logged as an error once; the same
// error on the following retries is logged at debug level.
func (m *Manager) order(ctx context.Context, c *client, h *host) {
	start := time.Now()
	cert, err := m.obtain(ctx, c, h.name)
	if err != nil && ctx.Err() != nil {
		return // shutting down: neither a success nor a failure
	}
	now := time.Now()
	m.mu.Lock()
	repeated := false
	if err != nil {
		h.failures++
		repeated = h.lastErr == err.Error()
		h.lastErr = err.Error()
		h.due = now.Add(max(retryDelay(h.failures, m.cfg.RetryMin, m.cfg.RetryMax), retryAfter(err)))
	} else {
		h.cert, h.failures, h.lastErr = cert, 0, ""
		h.due = renewAt(cert.Leaf.NotBefore, cert.Leaf.NotAfter, m.cfg.RenewWindow)
		m.publishLocked()
	}
	failures, due := h.failures, h.due
	m.mu.Unlock()

	if err != nil {
		ev := m.log.Error()
		if repeated {
			ev = m.log.Debug()
		}
		ev.Err(err).Str("host", h.name).Int("failures", failures).Time("retry_at", due).Msg("acme: order failed")
		m.emit(Event{Host: h.name, Kind: EventFailed, Err: err})
		return
	}
	m.log.Info().Str("host", h.name).Time("not_after", cert.Leaf.NotAfter).Time("renew_at", due).
		Dur("took", now.Sub(start)).Msg("acme: certificate obtained")
	m.emit(Event{Host: h.name, Kind: EventObtained, NotAfter: cert.Leaf.NotAfter})
}

// obtain runs one order for name, stores and returns the certificate.
func (m *Manager) obtain(ctx context.Context, c *client, name string) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.OrderTimeout)
	defer cancel()
	lc, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	res, err := lc.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: []string{name},
		Bundle:  true,
		KeyType: certcrypto.EC256,
	})
	if err != nil {
		if problem(err, legoacme.AccountDoesNotExistErrorType) {
			c.forget(lc)
		}
		return nil, fmt.Errorf("order certificate: %w", err)
	}
	bundle := append(append([]byte(nil), res.Certificate...), res.PrivateKey...)
	cert, err := parseBundle(bundle, name, time.Now())
	if err != nil {
		return nil, fmt.Errorf("certificate issued by the CA: %w", err)
	}
	if err := m.store.saveCert(name, bundle); err != nil {
		m.log.Error().Err(err).Str("host", name).Msg("acme: certificate served but not stored: it will be ordered again after a restart")
	}
	return cert, nil
}

func (m *Manager) emit(e Event) {
	if m.cfg.OnEvent != nil {
		m.cfg.OnEvent(e)
	}
}

// problem reports whether err carries an ACME problem of type typ.
func problem(err error, typ string) bool {
	var p *legoacme.ProblemDetails
	return errors.As(err, &p) && p.Type == typ
}

// retryAfter returns the wait a CA asked for with a rateLimited problem.
func retryAfter(err error) time.Duration {
	var rl *legoacme.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	return 0
}
