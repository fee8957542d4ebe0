package acme

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The pebble harness: Let's Encrypt's test CA from Debian's package,
// started on 127.0.0.1 with a generated config, validating on the test's
// own challenge servers, resolving names through the test's DNS server.

const (
	testZone      = "cutover.test."
	pebbleStartup = 20 * time.Second
	eventTimeout  = 90 * time.Second
	// pebbleValidity is the lifetime of pebble's certificates, in seconds.
	pebbleValidity = 3600
)

// requirePebble returns the path of the pebble binary, or skips the test,
// or fails it when CI=true, where pebble must be installed.
func requirePebble(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("pebble")
	if err == nil {
		return path
	}
	msg := "pebble (Let's Encrypt's test CA) is not installed: apt-get install -y pebble"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (required when CI=true)")
	}
	t.Skip(msg)
	return ""
}

type pebble struct {
	dirURL  string
	mgmtURL string
	// apiRoots trusts pebble's own HTTPS listeners (ACME API, management).
	apiRoots *x509.CertPool

	mu     sync.Mutex
	lines  []string
	orders int
}

// ordersAdded counts the orders pebble logged ("Added order").
func (p *pebble) ordersAdded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}

func (p *pebble) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// startPebble starts pebble validating HTTP-01 on httpPort and
// TLS-ALPN-01 on tlsPort of 127.0.0.1, resolving through dnsAddr. It is
// killed at the end of the test.
func startPebble(t *testing.T, bin, dnsAddr string, httpPort, tlsPort int) *pebble {
	t.Helper()
	dir := t.TempDir()
	apiRoots := writeServerCert(t, dir)
	var lastErr error
	for range 3 { // the two API ports are picked free, then bound by pebble: retry a lost race
		p, err := runPebble(t, bin, dir, dnsAddr, httpPort, tlsPort)
		if err == nil {
			p.apiRoots = apiRoots
			return p
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func runPebble(t *testing.T, bin, dir, dnsAddr string, httpPort, tlsPort int) (*pebble, error) {
	apiAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  apiAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      pebbleValidity,
	}}
	data, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr, "-strict=false")
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_VA_ALWAYS_VALID=0", // really validate, on the test's servers
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order is validated anew
	)
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()

	p := &pebble{dirURL: "https://" + apiAddr + "/dir", mgmtURL: "https://" + mgmtAddr}
	ready, exited := make(chan struct{}), make(chan struct{})
	go p.scan(pr, ready, exited)
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-exited
		_ = pr.Close()
	}
	select {
	case <-ready:
		// pebble logs its addresses just before it binds them.
		if err := waitListening(exited, apiAddr, mgmtAddr); err != nil {
			stop()
			return nil, fmt.Errorf("%w:\n%s", err, p.output())
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("pebble output:\n%s", p.output())
			}
		})
		return p, nil
	case <-exited:
	case <-time.After(pebbleStartup):
	}
	stop()
	return nil, fmt.Errorf("pebble did not start:\n%s", p.output())
}

// waitListening waits until every one of addrs accepts connections, for
// at most pebbleStartup, or until exited is closed.
func waitListening(exited <-chan struct{}, addrs ...string) error {
	deadline := time.After(pebbleStartup)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-exited:
				return errors.New("pebble exited")
			case <-deadline:
				return fmt.Errorf("pebble not listening on %s: %w", addr, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// scan reads pebble's log until it exits.
func (p *pebble) scan(r io.Reader, ready, exited chan struct{}) {
	defer close(exited)
	sc := bufio.NewScanner(r)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.lines = append(p.lines, line)
		if strings.Contains(line, "Added order") {
			p.orders++
		}
		p.mu.Unlock()
		if !isReady && strings.Contains(line, "ACME directory available at") {
			isReady = true
			close(ready)
		}
	}
}

// root returns pebble's root CA, which its certificates chain to. Pebble
// generates it at every start.
func (p *pebble) root(t *testing.T) *x509.CertPool {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.apiRoots}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(p.mgmtURL + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /roots/0: %v %s %s", err, resp.Status, data)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("GET /roots/0: no certificate in %q", data)
	}
	return pool
}

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

// writeServerCert writes a self-signed certificate for 127.0.0.1 and its
// key to dir/cert.pem and dir/key.pem, for pebble's HTTPS listeners, and
// returns a pool that trusts it.
func writeServerCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebble test listener"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeTestFile(t, filepath.Join(dir, "cert.pem"), certPEM)
	writeTestFile(t, filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
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
}

// runManager starts a Manager of cfg with pebble as its CA, logging to
// the test, and stops it at the end of the test if stop was not called.
func runManager(t *testing.T, p *pebble, cfg Config) *running {
	t.Helper()
	cfg.CA, cfg.RootCAs = p.dirURL, p.apiRoots
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
		select {
		case e := <-r.events:
			if e.Host != host {
				continue
			}
			if e.Kind == kind {
				return e
			}
			if e.Kind == EventFailed {
				t.Fatalf("%s: order failed: %v", host, e.Err)
			}
		case <-timeout:
			t.Fatalf("%s: no %s event within %v; status %+v", host, kind, eventTimeout, r.Status())
		}
	}
}
