// Package pebbletest runs pebble, Let's Encrypt's test CA from Debian's
// package, on 127.0.0.1 for the ACME tests: acme's own and e2e's through
// the binary. It is for tests only, and a package of its own because test
// code of one package cannot be imported by another's.
//
// Pebble validates on the test's own listeners and resolves names through
// the test's DNS server (StartDNS).
package pebbletest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// Startup bounds the wait for pebble to serve its API.
	Startup = 20 * time.Second
	// Validity is the lifetime of pebble's certificates, in seconds.
	Validity = 3600
)

// Require returns the path of the pebble binary, or skips the test, or
// fails it when CI=true, where pebble must be installed.
func Require(t testing.TB) string {
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

// Pebble is a running pebble. Its methods are safe for concurrent use.
type Pebble struct {
	DirURL  string // the ACME directory
	MgmtURL string // the management API
	// APICertFile is the PEM certificate of pebble's own HTTPS listeners
	// (ACME API, management); APIRoots trusts it.
	APICertFile string
	APIRoots    *x509.CertPool

	mu     sync.Mutex
	lines  []string
	orders int
}

// OrdersAdded counts the orders pebble logged ("Added order").
func (p *Pebble) OrdersAdded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}

// Output returns what pebble logged so far.
func (p *Pebble) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Start starts pebble (bin) validating HTTP-01 on httpPort and
// TLS-ALPN-01 on tlsPort of the address dnsAddr resolves names to. It is
// killed at the end of the test, and its output logged if the test failed.
func Start(t testing.TB, bin, dnsAddr string, httpPort, tlsPort int) *Pebble {
	t.Helper()
	dir := t.TempDir()
	roots := writeListenerCert(t, dir)
	var lastErr error
	for range 3 { // the two API ports are picked free, then bound by pebble: retry a lost race
		p, err := run(t, bin, dir, dnsAddr, httpPort, tlsPort)
		if err == nil {
			p.APIRoots, p.APICertFile = roots, filepath.Join(dir, "cert.pem")
			return p
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func run(t testing.TB, bin, dir, dnsAddr string, httpPort, tlsPort int) (*Pebble, error) {
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
		"certificateValidityPeriod":      Validity,
	}}
	data, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble-config.json")
	writeFile(t, cfgPath, data)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr, "-strict=false")
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_VA_ALWAYS_VALID=0", // really validate, on the test's listeners
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order is validated anew
	)
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()

	p := &Pebble{DirURL: "https://" + apiAddr + "/dir", MgmtURL: "https://" + mgmtAddr}
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
			return nil, fmt.Errorf("%w:\n%s", err, p.Output())
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("pebble output:\n%s", p.Output())
			}
		})
		return p, nil
	case <-exited:
	case <-time.After(Startup):
	}
	stop()
	return nil, fmt.Errorf("pebble did not start:\n%s", p.Output())
}

// waitListening waits until every one of addrs accepts connections, for
// at most Startup, or until exited is closed.
func waitListening(exited <-chan struct{}, addrs ...string) error {
	deadline := time.After(Startup)
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
func (p *Pebble) scan(r io.Reader, ready, exited chan struct{}) {
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

// Root returns pebble's root CA (GET /roots/0 of its management API),
// which its certificates chain to. Pebble generates it at every start.
func (p *Pebble) Root(t testing.TB) *x509.CertPool {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.APIRoots}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(p.MgmtURL + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /roots/0: %v %s %s", err, res.Status, data)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("GET /roots/0: no certificate in %q", data)
	}
	return pool
}

// freeAddr returns a 127.0.0.1 address with a port that was free.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
