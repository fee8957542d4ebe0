package e2e

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
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The ACME end-to-end test: Let's Encrypt's test CA pebble (Debian package
// pebble) issues a certificate to the built cutover binary, which answers
// the challenges on its own listeners and serves the certificate on its
// HTTPS listener. The harness below is adapted from acme/*_test.go (test
// code of another package cannot be imported).

const (
	acmeZone = "cutover.test."
	acmeHost = "shop.cutover.test"
	// acmeIssueTimeout bounds the wait for the certificate to be served.
	acmeIssueTimeout  = 60 * time.Second
	acmePebbleStartup = 20 * time.Second
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
	bin, err := exec.LookPath("pebble")
	if err != nil {
		skipOrFail(t, "pebble (Let's Encrypt's test CA) is not installed: apt-get install -y pebble (required when CI=true): %v", err)
	}

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
	pebble  *acmePebble
	https   string // cutover's HTTPS address
	root    *x509.CertPool
	backend *backend
}

func runACME(t *testing.T, bin string, s acmeSetup) *acmeRun {
	t.Helper()
	dns := startACMEDNS(t, acmeZone)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	pebbleHTTP := portNumber(t, httpAddr)
	if s.closeHTTP01 {
		pebbleHTTP = portNumber(t, freeAddr(t)) // nothing listens there
	}
	p := startACMEPebble(t, bin, dns, pebbleHTTP, portNumber(t, httpsAddr))
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
		"--acme-ca", p.dirURL, "--acme-ca-root", p.apiCertFile,
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
	return &acmeRun{in: in, pebble: p, https: httpsAddr, root: p.root(t), backend: b}
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
				acmeHost, err, p, r.pebble.output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("cutover did not serve a certificate for %s verified by pebble's root within %s: %v\npebble:\n%s",
				acmeHost, acmeIssueTimeout, err, r.pebble.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s: serial %x issued by %q, valid until %s", acmeHost, leaf.SerialNumber, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339))
	if r.pebble.ordersAdded() == 0 {
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

// acmePebble is a running pebble.
type acmePebble struct {
	dirURL      string
	mgmtURL     string
	apiCertFile string         // PEM of pebble's own HTTPS listeners, for --acme-ca-root
	apiRoots    *x509.CertPool // the same, as a pool

	mu     sync.Mutex
	lines  []string
	orders int
}

func (p *acmePebble) ordersAdded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}

func (p *acmePebble) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// startACMEPebble starts pebble validating HTTP-01 on httpPort and
// TLS-ALPN-01 on tlsPort of the names' address (127.0.0.1 by dnsAddr).
// It is killed at the end of the test.
func startACMEPebble(t *testing.T, bin, dnsAddr string, httpPort, tlsPort int) *acmePebble {
	t.Helper()
	dir := t.TempDir()
	roots := writeACMEServerCert(t, dir)
	var lastErr error
	for range 3 { // the API ports are picked free, then bound by pebble: retry a lost race
		p, err := runACMEPebble(t, bin, dir, dnsAddr, httpPort, tlsPort)
		if err == nil {
			p.apiRoots, p.apiCertFile = roots, filepath.Join(dir, "cert.pem")
			return p
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func runACMEPebble(t *testing.T, bin, dir, dnsAddr string, httpPort, tlsPort int) (*acmePebble, error) {
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
		"certificateValidityPeriod":      3600,
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
		"PEBBLE_VA_ALWAYS_VALID=0", // really validate, on cutover's listeners
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order is validated anew
	)
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()

	p := &acmePebble{dirURL: "https://" + apiAddr + "/dir", mgmtURL: "https://" + mgmtAddr}
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
		if err := acmeWaitListening(exited, apiAddr, mgmtAddr); err != nil {
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
	case <-time.After(acmePebbleStartup):
	}
	stop()
	return nil, fmt.Errorf("pebble did not start:\n%s", p.output())
}

// acmeWaitListening waits until every one of addrs accepts connections.
func acmeWaitListening(exited <-chan struct{}, addrs ...string) error {
	deadline := time.After(acmePebbleStartup)
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

func (p *acmePebble) scan(r io.Reader, ready, exited chan struct{}) {
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

// root returns pebble's root CA (GET /roots/0 of its management API),
// which it generates at every start.
func (p *acmePebble) root(t *testing.T) *x509.CertPool {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.apiRoots}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(p.mgmtURL + "/roots/0")
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

// writeACMEServerCert writes a self-signed certificate for 127.0.0.1 and
// its key to dir/cert.pem and dir/key.pem, for pebble's HTTPS listeners,
// and returns a pool that trusts it.
func writeACMEServerCert(t *testing.T, dir string) *x509.CertPool {
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
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// startACMEDNS runs a DNS server on 127.0.0.1 (UDP) for pebble: A queries
// for names in zone get 127.0.0.1, other queries in zone no record, names
// outside zone NXDOMAIN. It stops at the end of the test.
func startACMEDNS(t *testing.T, zone string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if resp, ok := acmeDNSAnswer(buf[:n], zone); ok {
				_, _ = pc.WriteTo(resp, addr)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

func acmeDNSAnswer(query []byte, zone string) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	inZone := name == zone || strings.HasSuffix(name, "."+zone)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !inZone {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	if inZone && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rr, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, false
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}
