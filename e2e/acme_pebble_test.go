package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/internal/pebbletest"
)

// The ACME end-to-end test: Let's Encrypt's test CA pebble (Debian package
// pebble) issues a certificate to the built cutover binary, which answers
// the challenges on its own listeners and serves the certificate on its
// HTTPS listener. Pebble and its DNS server are started by pebbletest, as
// in acme/'s tests.

const (
	acmeZone = "cutover.test."
	acmeHost = "shop.cutover.test"
	// acmeIssueTimeout bounds the wait for the certificate to be served.
	acmeIssueTimeout = 60 * time.Second
)

// TestACMEWithPebble runs cutover with --data-dir and pebble as its CA,
// with a route tls.acme=true for shop.cutover.test, and waits until its
// HTTPS listener serves, for that name, a certificate that verifies
// against pebble's root; then a GET over HTTPS reaches the backend and
// the admin API lists no acme problem. Pebble validates on cutover's own
// --http-addr (HTTP-01) and --https-addr (TLS-ALPN-01) ports, and resolves
// *.cutover.test to 127.0.0.1 through the test's DNS server.
//
// Which challenge is used: the binary offers both types to lego (it has no
// flag to turn one off), and lego always picks TLS-ALPN-01 when the CA
// offers it; pebble offers every type and pebble 2.4 cannot be configured
// otherwise. So with both ports reachable the order is validated by
// TLS-ALPN-01 (the first subtest logs the counts), the second subtest
// closes pebble's HTTP-01 port and checks TLS-ALPN-01 alone, and a
// HTTP-01-only run (pebble's TLS-ALPN-01 port closed) cannot succeed: lego
// still picks TLS-ALPN-01, the authorization becomes invalid, and the order
// is retried only after 5 minutes. HTTP-01 through cutover's HTTP listener
// is tested in acme/ (DisableTLSALPN01), not here.
//
// The third subtest gives cutover a --cert-dir that also holds a
// certificate for the ACME name: the README says the ACME certificate wins
// for its names and the directory's default serves the rest.
func TestACMEWithPebble(t *testing.T) {
	bin := pebbletest.Require(t)

	t.Run("both challenge ports reachable", func(t *testing.T) {
		r := runACME(t, bin, acmeSetup{})
		r.checkServed(t)
		http01, alpn := r.challengesAnswered()
		t.Logf("challenges answered by cutover for %s: http-01 %d, tls-alpn-01 %d", acmeHost, http01, alpn)
		if http01+alpn == 0 {
			t.Errorf("cutover logged no answered challenge for %s, yet a certificate was issued", acmeHost)
		}
	})

	t.Run("tls-alpn-01 only (HTTP-01 port closed)", func(t *testing.T) {
		r := runACME(t, bin, acmeSetup{closeHTTP01: true})
		r.checkServed(t)
		http01, alpn := r.challengesAnswered()
		if alpn == 0 || http01 != 0 {
			t.Errorf("challenges answered by cutover for %s: http-01 %d, tls-alpn-01 %d; want tls-alpn-01 only", acmeHost, http01, alpn)
		}
	})

	// README: "an ACME certificate wins over the certificate directory's
	// for its names, and the directory's default is served to the rest".
	t.Run("acme certificate wins over --cert-dir", func(t *testing.T) {
		ca := newTestCA(t)
		certDir := t.TempDir()
		ca.writePair(t, certDir, "default", 10, "default.test")
		ca.writePair(t, certDir, "shop", 11, acmeHost)
		r := runACME(t, bin, acmeSetup{certDir: certDir})
		r.checkServed(t)
		if got := serialFor(t, r.https, "other.cutover.test"); got != 10 {
			t.Errorf("SNI other.cutover.test: served serial %d, want the directory's default (10)", got)
		}
	})
}

// acmeSetup varies the subtests.
type acmeSetup struct {
	closeHTTP01 bool   // pebble validates HTTP-01 on a closed port
	certDir     string // --cert-dir, if any
}

// acmeRun is a cutover with ACME on and its pebble.
type acmeRun struct {
	in      *instance
	pebble  *pebbletest.Pebble
	https   string // cutover's HTTPS address
	root    *x509.CertPool
	backend *backend
}

func runACME(t *testing.T, bin string, s acmeSetup) *acmeRun {
	t.Helper()
	dns := pebbletest.StartDNS(t, acmeZone)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	pebbleHTTP := portNumber(t, httpAddr)
	if s.closeHTTP01 {
		pebbleHTTP = portNumber(t, freeAddr(t)) // nothing listens there
	}
	p := pebbletest.Start(t, bin, dns, pebbleHTTP, portNumber(t, httpsAddr))
	b := newBackend(t, "shop")
	yaml := fmt.Sprintf(`
services:
  shop:
    host: %s
    tls.acme: true
    backends: [%s]
`, acmeHost, b.addr())
	args := []string{
		"--http-addr", httpAddr, "--https-addr", httpsAddr,
		"--data-dir", t.TempDir(),
		"--acme-ca", p.DirURL, "--acme-ca-root", p.APICertFile,
		"--acme-email", "t@cutover.test",
	}
	if s.certDir != "" {
		args = append(args, "--cert-dir", s.certDir)
	}
	in := start(t, yaml, args...)
	started := in.waitLog(time.Second, func(l map[string]any) bool { return l["message"] == "cutover started" })
	if got, _ := started["https"].(string); got != httpsAddr {
		t.Fatalf("cutover's HTTPS listener is %q, want %s", got, httpsAddr)
	}
	return &acmeRun{in: in, pebble: p, https: httpsAddr, root: p.Root(t), backend: b}
}

// checkServed waits, at most acmeIssueTimeout, until cutover serves for
// acmeHost a certificate that verifies against pebble's root, then checks
// a GET over HTTPS and the admin API.
func (r *acmeRun) checkServed(t *testing.T) {
	t.Helper()
	var leaf *x509.Certificate
	deadline := time.Now().Add(acmeIssueTimeout)
	for {
		var err error
		leaf, err = r.verifiedLeaf()
		if err == nil {
			break
		}
		if p := acmeProblems(t, r.in); len(p) > 0 {
			t.Fatalf("no certificate for %s yet (%v), and the admin API lists acme problems (retried only after minutes): %v\npebble:\n%s",
				acmeHost, err, p, r.pebble.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("cutover did not serve a certificate for %s verified by pebble's root within %s: %v\npebble:\n%s",
				acmeHost, acmeIssueTimeout, err, r.pebble.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s: serial %x issued by %q, valid until %s", acmeHost, leaf.SerialNumber, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339))
	if r.pebble.OrdersAdded() == 0 {
		t.Errorf("pebble logged no order")
	}

	c := r.client()
	defer c.CloseIdleConnections()
	res, err := c.Get("https://" + acmeHost + "/hello")
	if err != nil {
		t.Fatalf("GET over HTTPS: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || string(body) != "shop /hello" {
		t.Errorf("GET https://%s/hello = %s %q %v, want 200 \"shop /hello\"", acmeHost, res.Status, body, err)
	}
	if res.TLS == nil || !res.TLS.PeerCertificates[0].Equal(leaf) {
		t.Errorf("the GET was not served the ACME certificate")
	}
	if n := r.backend.requests.Load(); n != 1 {
		t.Errorf("backend got %d requests, want 1", n)
	}
	if p := acmeProblems(t, r.in); len(p) != 0 {
		t.Errorf("GET /api/v1/services lists acme problems: %v", p)
	}
}

// verifiedLeaf makes a TLS handshake with cutover for acmeHost, trusting
// pebble's root only, and returns the certificate served.
func (r *acmeRun) verifiedLeaf() (*x509.Certificate, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 2 * time.Second},
		Config:    &tls.Config{ServerName: acmeHost, RootCAs: r.root, NextProtos: []string{"http/1.1"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", r.https)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// client is an HTTPS client that trusts pebble's root only and connects
// every name to cutover's HTTPS listener.
func (r *acmeRun) client() *http.Client {
	dial := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: r.root},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dial.DialContext(ctx, network, r.https)
			},
		},
	}
}

// challengesAnswered counts the challenges cutover logged answering for
// acmeHost (debug level, which the harness turns on).
func (r *acmeRun) challengesAnswered() (http01, tlsALPN01 int) {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	for _, l := range r.in.logs {
		if l["host"] != acmeHost {
			continue
		}
		switch l["message"] {
		case "acme: answered http-01 challenge":
			http01++
		case "acme: answered tls-alpn-01 challenge":
			tlsALPN01++
		}
	}
	return http01, tlsALPN01
}

// acmeProblems returns the problems of provider acme in the admin API.
func acmeProblems(t *testing.T, in *instance) []string {
	t.Helper()
	res, err := http.Get(in.admin + "/api/v1/services")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Problems []struct{ Provider, Source, Key, Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatalf("GET /api/v1/services: %v", err)
	}
	var out []string
	for _, p := range doc.Problems {
		if p.Provider == "acme" {
			out = append(out, p.Source+": "+p.Message)
		}
	}
	return out
}

func portNumber(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
