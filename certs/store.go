// Package certs is the certificate store of the HTTPS listener: the
// certificates found in a directory, chosen by the server name a client
// asks for (SNI).
//
// # Layout
//
// The directory holds pairs NAME.crt and NAME.key (the certificate chain,
// leaf first, and its private key) and bundles NAME.pem (chain and key in
// one file). Every other file is ignored, and so are names that start with
// a dot (editors' temporary files, the ..data directory of a Kubernetes
// secret volume, whose NAME.crt symlinks are read as usual) and a lone
// NAME.crt that holds a CA certificate (cert-manager's ca.crt).
//
// # Choice
//
// Each certificate is indexed by its DNS subject alternative names (its
// common name only when it has none), wildcards *.example.com included. A
// hello gets the certificate of the exact name, else of the wildcard one
// label up, else the default: Config.DefaultName, else the one named
// default, else the first by name. A hello without a server name gets the
// default. When two certificates claim a name, one that is valid now wins
// over one that is not, then the one that expires later, so a renewed
// certificate takes over from the old one as soon as it is added.
//
// # Reloads
//
// Run watches the directory and reloads it a moment after a burst of
// changes (editors rename over files, cert-manager swaps a symlink), plus
// a full rescan every Config.Rescan as the safety net for changes that the
// watcher cannot see. A file that cannot be used (unparsable PEM, a key
// that does not match its certificate, half of a pair) is logged once and
// listed by Problems, and the certificate that the name had before stays
// in service. Expired certificates are served all the same, with a
// warning.
//
// GetCertificate, Match, Fallback, Names and Problems are safe for
// concurrent use and take no lock: they read one immutable state that
// reloads replace atomically.
package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultRescan   = time.Minute
)

// Config configures a Store.
type Config struct {
	// Dir is the directory of the certificates. Required.
	Dir string
	// DefaultName names the certificate (NAME of NAME.crt or NAME.pem)
	// for hellos that no certificate matches. Empty means the one named
	// default, else the first by name.
	DefaultName string
	// Logger receives loads, removals, expiry warnings and problems. The
	// zero value logs nothing.
	Logger zerolog.Logger
	// Registerer receives the store's metrics. Nil means none are
	// registered.
	Registerer prometheus.Registerer
	// Debounce is the lull in change events that Run waits for before it
	// reloads. Zero means DefaultDebounce.
	Debounce time.Duration
	// Rescan is the period of Run's full reloads, which catch what the
	// watcher misses. Zero means DefaultRescan.
	Rescan time.Duration
}

func (c Config) withDefaults() Config {
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.Rescan == 0 {
		c.Rescan = DefaultRescan
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("certificate directory: want a path")
	case c.Debounce < 0:
		return fmt.Errorf("debounce %s: want a positive duration", c.Debounce)
	case c.Rescan < 0:
		return fmt.Errorf("rescan %s: want a positive duration", c.Rescan)
	case strings.ContainsAny(c.DefaultName, `/\`):
		return fmt.Errorf("default certificate %q: want a NAME of NAME.crt or NAME.pem, not a path", c.DefaultName)
	}
	return nil
}

// Store holds the certificates of a directory.
type Store struct {
	cfg   Config
	log   zerolog.Logger
	state atomic.Pointer[state]

	reloads  [2]atomic.Uint64 // by reloadSuccess, reloadFailure
	mu       sync.Mutex       // guards reloaded
	reloaded chan struct{}    // closed and replaced after each reload
}

// New loads the directory. It fails when the directory cannot be read or
// no file of DefaultName exists; a broken certificate file is a problem
// (see Problems), not an error. New starts no goroutine: Run watches.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("certificate directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("certificate directory %s: not a directory", cfg.Dir)
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With().Str("dir", cfg.Dir).Logger(), reloaded: make(chan struct{})}
	s.state.Store(&state{})
	s.reload()
	if n := cfg.DefaultName; n != "" && !s.state.Load().files[n] {
		return nil, fmt.Errorf("default certificate %q: no %s.crt and %s.key nor %s.pem in %s", n, n, n, n, cfg.Dir)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(collector{s}); err != nil {
			return nil, fmt.Errorf("register certificate metrics: %w", err)
		}
	}
	return s, nil
}

// GetCertificate returns the certificate for the hello's server name:
// exact, wildcard, else the default. It fits tls.Config.GetCertificate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := s.state.Load()
	if c := st.match(hello.ServerName); c != nil {
		return c, nil
	}
	if st.fallback != nil {
		return st.fallback, nil
	}
	return nil, fmt.Errorf("no certificate in %s", s.cfg.Dir)
}

// Match returns the certificate whose names cover the hello's server
// name, exact or wildcard, or nil: a source among others, tried before a
// default.
func (s *Store) Match(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.state.Load().match(hello.ServerName), nil
}

// Fallback returns the default certificate whatever the hello, or nil
// when the store has none.
func (s *Store) Fallback(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.state.Load().fallback, nil
}

// Names returns the names (NAME of NAME.crt or NAME.pem) of the
// certificates in service, sorted.
func (s *Store) Names() []string {
	return slices.Clone(s.state.Load().names)
}

// Problems returns the problems in effect, one per certificate name, each
// "FILES: what is wrong", sorted. A certificate that was in service before
// its files broke is still served.
func (s *Store) Problems() []string {
	ps := s.state.Load().problems
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.cfg.Dir }

// nextReload returns a channel that is closed when the reload after this
// call has been applied.
func (s *Store) nextReload() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloaded
}

// reload reads the directory and swaps in the new state. Only New and
// Run's goroutine call it, never at the same time.
func (s *Store) reload() {
	prev := s.state.Load()
	next := load(s.cfg.Dir, prev, s.log)
	next.index(s.cfg.DefaultName)
	s.state.Store(next)
	s.report(prev, next)
	s.mu.Lock()
	close(s.reloaded)
	s.reloaded = make(chan struct{})
	s.mu.Unlock()
}

// Reload results, indexes of Store.reloads.
const (
	reloadSuccess = iota
	reloadFailure
)

// report logs what changed from prev to next: problems when they appear
// and when they are resolved, and the default certificate when it changes.
// Loaded and removed certificates were logged by load.
func (s *Store) report(prev, next *state) {
	old := map[problem]bool{}
	for _, p := range prev.problems {
		old[p] = true
	}
	now := map[problem]bool{}
	for _, p := range next.problems {
		now[p] = true
		if !old[p] {
			s.log.Warn().Str("file", p.files).Str("cert", p.name).Str("err", p.msg).
				Bool("kept", next.entries[p.name] != nil).Msg("certificate problem: " + p.String())
		}
	}
	for _, p := range prev.problems {
		if !now[p] && !next.hasProblem(p.name) {
			s.log.Info().Str("file", p.files).Str("cert", p.name).Msg("certificate problem resolved")
		}
	}
	if next.fallbackName != prev.fallbackName && next.fallbackName != "" {
		s.log.Info().Str("cert", next.fallbackName).Msg("default certificate")
	}
	if len(next.problems) > 0 {
		s.reloads[reloadFailure].Add(1)
	} else {
		s.reloads[reloadSuccess].Add(1)
	}
}
