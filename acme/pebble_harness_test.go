package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/internal/pebbletest"
)

// The pebble harness: pebbletest starts pebble, validating on the test's
// own challenge servers below, resolving names through its DNS server.

const (
	testZone     = "cutover.test."
	eventTimeout = 90 * time.Second
)

// freeAddr returns a 127.0.0.1 address with a port that was free.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// challengeServers stand in for cutover's listeners on the ports pebble
// validates: an HTTP server with Manager.HTTPHandler and an HTTPS server
// with Manager.GetCertificate, both serving the current Manager. They
// count the challenge requests they see, per host.
type challengeServers struct {
	httpPort, tlsPort int
	current           atomic.Pointer[Manager]

	mu       sync.Mutex
	httpHits map[string]int // HTTP-01 requests
	alpnHits map[string]int // acme-tls/1 handshakes
}

func startChallengeServers(t *testing.T) *challengeServers {
	t.Helper()
	s := &challengeServers{httpHits: map[string]int{}, alpnHits: map[string]int{}}
	quiet := log.New(io.Discard, "", 0)

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.httpPort = hl.Addr().(*net.TCPAddr).Port
	httpSrv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ErrorLog: quiet}

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.tlsPort = tl.Addr().(*net.TCPAddr).Port
	tlsSrv := &http.Server{
		Handler:  http.NotFoundHandler(),
		ErrorLog: quiet,
		TLSConfig: &tls.Config{
			GetCertificate: s.getCertificate,
			NextProtos:     []string{"h2", "http/1.1", ACMETLS1Protocol},
		},
	}

	var wg sync.WaitGroup
	wg.Go(func() { _ = httpSrv.Serve(hl) })
	wg.Go(func() { _ = tlsSrv.ServeTLS(tl, "", "") })
	t.Cleanup(func() {
		_ = httpSrv.Close()
		_ = tlsSrv.Close()
		wg.Wait()
	})
	return s
}

func (s *challengeServers) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		s.count(s.httpHits, requestHost(r.Host))
	}
	m := s.current.Load()
	if m == nil {
		http.NotFound(w, r)
		return
	}
	m.HTTPHandler(nil).ServeHTTP(w, r)
}

func (s *challengeServers) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if slices.Contains(hello.SupportedProtos, ACMETLS1Protocol) {
		s.count(s.alpnHits, serverName(hello.ServerName))
	}
	m := s.current.Load()
	if m == nil {
		return nil, errors.New("no manager")
	}
	return m.GetCertificate(hello)
}

func (s *challengeServers) count(hits map[string]int, host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hits[host]++
}

func (s *challengeServers) hits(host string) (http01, tlsALPN01 int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpHits[host], s.alpnHits[host]
}

// running is a Manager whose Run runs until stop, with its events.
type running struct {
	*Manager
	events chan Event
	stop   func()
	// others are events of other hosts that waitEvent read while it
	// waited for one host's: a later wait for their host finds them.
	others []Event
}

// runManager starts a Manager of cfg with pebble as its CA, logging to
// the test, and stops it at the end of the test if stop was not called.
func runManager(t *testing.T, p *pebbletest.Pebble, cfg Config) *running {
	t.Helper()
	cfg.CA, cfg.RootCAs = p.DirURL, p.APIRoots
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Logger()
	return startManager(t, cfg)
}

// startManager starts a Manager of cfg (OnEvent filled in) and stops it at
// the end of the test if stop was not called.
func startManager(t *testing.T, cfg Config) *running {
	t.Helper()
	events := make(chan Event, 256)
	cfg.OnEvent = func(e Event) {
		select {
		case events <- e:
		default:
			t.Errorf("event dropped: %+v", e)
		}
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("Run did not return within a minute of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return &running{Manager: m, events: events, stop: stop}
}

// waitEvent returns the next event of kind for host, failing the test on
// a failure event for host or after eventTimeout.
func (r *running) waitEvent(t *testing.T, host string, kind EventKind) Event {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		var e Event
		if i := slices.IndexFunc(r.others, func(e Event) bool { return e.Host == host }); i >= 0 {
			e = r.others[i]
			r.others = slices.Delete(r.others, i, i+1)
		} else {
			select {
			case e = <-r.events:
			case <-timeout:
				t.Fatalf("%s: no %s event within %v; status %+v", host, kind, eventTimeout, r.Status())
			}
		}
		if e.Host != host {
			r.others = append(r.others, e)
			continue
		}
		if e.Kind == kind {
			return e
		}
		if e.Kind == EventFailed {
			t.Fatalf("%s: order failed: %v", host, e.Err)
		}
	}
}
