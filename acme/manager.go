// Package acme obtains and renews TLS certificates with the ACME protocol
// (RFC 8555) for the host names of routes labelled cutover.tls.acme=true.
//
// A Manager is told the set of host names with SetHosts at every table
// update. Its Run orders a certificate for each new name in the
// background, renews it when a third of its lifetime is left, retries
// failures with a doubling backoff, and stops renewing removed names.
// The CA's challenges are answered through cutover's own listeners:
// HTTP-01 by HTTPHandler on the HTTP listener, TLS-ALPN-01 by
// GetCertificate on the HTTPS listener (whose TLS config must offer
// NextProtos). The Manager never opens a listener.
//
// The account and the certificates are stored under Config.DataDir, per
// CA, so a restarted Manager serves its stored certificates without a new
// order. Only exact names are managed: HTTP-01 and TLS-ALPN-01 cannot
// prove control of a wildcard, so wildcard names are ignored and logged.
//
// The ACME protocol itself is github.com/go-acme/lego/v5, used as a
// client library only: its challenge providers are replaced by ones that
// publish answers to this package's handlers. lego logs through its own
// package-level slog logger, which SetLibraryLogger redirects.
//
// New and SetHosts start no goroutine: the work is queued for Run. All
// methods are safe for concurrent use.
package acme

import (
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Manager manages the certificates of a set of host names.
type Manager struct {
	cfg        Config
	log        zerolog.Logger
	store      storage
	challenges *challenges
	wake       chan struct{} // one slot: the host set or a schedule changed
	running    atomic.Bool

	// certs maps host names to served certificates; replaced whole (copy
	// on write) under mu, read without lock by GetCertificate.
	certs atomic.Pointer[map[string]*tls.Certificate]

	mu      sync.Mutex
	hosts   map[string]*host
	busy    map[string]bool // names a worker holds, even removed ones
	ignored map[string]bool // names reported as unusable, while present
}

// host is the state of one managed name. A worker that holds it (busy)
// does the I/O without m.mu and writes the fields under m.mu.
type host struct {
	name     string
	loaded   bool             // storage was read
	cert     *tls.Certificate // served certificate, nil if none
	due      time.Time        // next work: load, order or renewal
	failures int              // consecutive failed orders
	lastErr  string
}

// State is the state of a host in Status.
type State string

const (
	// StateObtaining means no certificate yet: loading or ordering one.
	StateObtaining State = "obtaining"
	// StateValid means a certificate is served. Its renewal may be failing:
	// see LastError.
	StateValid State = "valid"
	// StateFailed means no valid certificate and the last order failed;
	// it is retried at NextAttempt.
	StateFailed State = "failed"
)

// HostStatus is the state of one managed host name, for the admin API.
type HostStatus struct {
	Host  string `json:"host"`
	State State  `json:"state"`
	// NotAfter is the expiry of the served certificate, zero if none.
	NotAfter time.Time `json:"not_after,omitzero"`
	// NextAttempt is when the next order (first, retry or renewal) starts.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Failures counts consecutive failed orders; LastError is the last one.
	Failures  int    `json:"failures,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// EventKind says what happened to a host's certificate.
type EventKind string

const (
	EventLoaded   EventKind = "loaded"   // a stored certificate is served
	EventObtained EventKind = "obtained" // the CA issued a certificate (first or renewal)
	EventFailed   EventKind = "failed"   // an order failed; it is retried with backoff
)

// Event is passed to Config.OnEvent. Every order ends in one EventObtained
// or EventFailed.
type Event struct {
	Host     string
	Kind     EventKind
	NotAfter time.Time // of the certificate, for EventLoaded and EventObtained
	Err      error     // for EventFailed
}

// New returns a Manager for cfg; it does no I/O and starts nothing.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		cfg:        cfg,
		log:        cfg.Logger,
		store:      newStorage(cfg.DataDir, cfg.CA),
		challenges: newChallenges(),
		wake:       make(chan struct{}, 1),
		hosts:      make(map[string]*host),
		busy:       make(map[string]bool),
		ignored:    make(map[string]bool),
	}
	m.certs.Store(&map[string]*tls.Certificate{})
	return m, nil
}

// SetHosts replaces the set of managed host names. New names are queued
// for Run, which serves a stored certificate or orders one; removed names
// are no longer served or renewed (their files stay in DataDir). Names
// that cannot be managed (wildcards, IP addresses, invalid names) are
// ignored and logged once while they stay in the set.
func (m *Manager) SetHosts(names []string) {
	want := make(map[string]bool, len(names))
	bad := make(map[string]error)
	for _, n := range names {
		h, err := normalizeHost(n)
		if err != nil {
			bad[n] = err
			continue
		}
		want[h] = true
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.reportIgnoredLocked(bad)
	added, removed := 0, 0
	for name := range want {
		if _, ok := m.hosts[name]; !ok {
			m.hosts[name] = &host{name: name}
			added++
		}
	}
	for name := range m.hosts {
		if !want[name] {
			delete(m.hosts, name)
			removed++
		}
	}
	if removed > 0 {
		m.publishLocked()
	}
	if added > 0 {
		m.signal()
	}
	if added+removed > 0 {
		m.log.Info().Int("added", added).Int("removed", removed).Int("hosts", len(m.hosts)).Msg("acme: host names changed")
	}
}

func (m *Manager) reportIgnoredLocked(bad map[string]error) {
	for name, err := range bad {
		if !m.ignored[name] {
			m.log.Warn().Str("host", name).Str("reason", err.Error()).Msg("acme: host name ignored")
		}
	}
	m.ignored = make(map[string]bool, len(bad))
	for name := range bad {
		m.ignored[name] = true
	}
}

// publishLocked rebuilds the served certificates from m.hosts.
func (m *Manager) publishLocked() {
	certs := make(map[string]*tls.Certificate, len(m.hosts))
	for name, h := range m.hosts {
		if h.cert != nil {
			certs[name] = h.cert
		}
	}
	m.certs.Store(&certs)
}

// signal wakes Run's dispatcher; it never blocks.
func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Status returns the state of every managed host, sorted by name.
func (m *Manager) Status() []HostStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([]HostStatus, 0, len(m.hosts))
	for _, name := range slices.Sorted(maps.Keys(m.hosts)) {
		out = append(out, m.hosts[name].status(now))
	}
	return out
}

func (h *host) status(now time.Time) HostStatus {
	s := HostStatus{
		Host:        h.name,
		State:       StateObtaining,
		NextAttempt: h.due,
		Failures:    h.failures,
		LastError:   h.lastErr,
	}
	if h.cert != nil {
		s.NotAfter = h.cert.Leaf.NotAfter
	}
	switch {
	case h.cert != nil && now.Before(s.NotAfter):
		s.State = StateValid
	case h.failures > 0:
		s.State = StateFailed
	}
	return s
}

// GetCertificate is for tls.Config.GetCertificate of the HTTPS listener.
// It returns the certificate of a managed hello.ServerName, and (nil, nil)
// for a name it does not manage or has no certificate for yet, so that
// the caller tries its other sources. A TLS-ALPN-01 hello (one offering
// ACMETLS1Protocol) gets the challenge certificate, or an error if no
// challenge is pending for the name: no other certificate may answer it.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := serverName(hello.ServerName)
	if slices.Contains(hello.SupportedProtos, ACMETLS1Protocol) {
		if c := m.challenges.alpnCert(name); c != nil {
			m.log.Debug().Str("host", name).Msg("acme: answered tls-alpn-01 challenge")
			return c, nil
		}
		return nil, fmt.Errorf("acme: no tls-alpn-01 challenge pending for %q", name)
	}
	return (*m.certs.Load())[name], nil
}

// NextProtos returns the protocols to add to the HTTPS listener's
// tls.Config.NextProtos, after its own ("h2", "http/1.1"), so that the CA
// can negotiate TLS-ALPN-01. It is empty when TLS-ALPN-01 is disabled. A
// connection that negotiated it carries no request: the CA closes it after
// the handshake, and net/http treats it as HTTP/1.1 until then.
func (m *Manager) NextProtos() []string {
	if m.cfg.DisableTLSALPN01 {
		return nil
	}
	return []string{ACMETLS1Protocol}
}
