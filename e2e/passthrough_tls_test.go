package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// passProto is the ALPN protocol that only the passthrough backend offers:
// a client that negotiates it talks to the backend's TLS, not cutover's.
const passProto = "pass-e2e/1"

// passBackend is a TLS server on 127.0.0.1 with its own certificate: after
// the handshake it greets with "backend SNI\n" and echoes what it reads.
type passBackend struct {
	*connServer
	leaf *x509.Certificate
}

func newPassBackend(t *testing.T, ca *testCA, host string) *passBackend {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, 100, host)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{passProto},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &passBackend{connServer: serveConns(t, ln, greetSNI), leaf: cert.Leaf}
}

// greetSNI greets a TLS connection with "backend SNI\n" and echoes it.
func greetSNI(c net.Conn) {
	tc := c.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return // a client that refused the certificate
	}
	if _, err := fmt.Fprintf(tc, "backend %s\n", tc.ConnectionState().ServerName); err == nil {
		_, _ = io.Copy(tc, tc)
	}
}

// dialPass connects to addr with SNI serverName, verifying the server's
// certificate against roots only, and reads the backend's greeting. The
// connection is a *tls.Conn.
func dialPass(addr, serverName string, roots *x509.CertPool) (*greetedConn, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config:    &tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{passProto}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return readGreeting(c)
}

// TestTLSPassthrough runs cutover's HTTPS listener with a passthrough
// service for pass.test, whose backend terminates TLS with a certificate
// of its own CA, and a route for term.test that cutover terminates with a
// --cert-dir certificate of another CA. A client asking for pass.test
// verifies the backend's certificate, trusting only the backend's CA, and
// talks to the backend end to end (ALPN and bytes); a client asking for
// term.test gets cutover's certificate and the HTTP route. Then 4 workers
// × 50 connections go through the passthrough with no failure, and
// cutover_tcp_connections_total{service="pass"} counts every one.
func TestTLSPassthrough(t *testing.T) {
	backendCA, cutoverCA := newTestCA(t), newTestCA(t)
	pb := newPassBackend(t, backendCA, "pass.test")
	term := newBackend(t, "term")
	certDir := t.TempDir()
	cutoverCA.writePair(t, certDir, "term", 7, "term.test")
	in, addr := startTLS(t, fmt.Sprintf(`
services:
  pass:
    protocol: tcp
    tls.passthrough: true
    host: pass.test
    backends: [%s]
  term:
    host: term.test
    backends: [%s]
`, pb.ln.Addr(), term.addr()), certDir)
	passDials := 0 // TCP connections made to cutover with SNI pass.test

	// SNI pass.test: the backend's certificate and protocol, end to end.
	passDials++
	pc, err := dialPass(addr, "pass.test", backendCA.pool())
	if err != nil {
		t.Fatalf("SNI pass.test, trusting the backend's CA only: %v", err)
	}
	st := pc.c.(*tls.Conn).ConnectionState()
	if !st.PeerCertificates[0].Equal(pb.leaf) {
		t.Errorf("SNI pass.test: served serial %v, want the backend's %v", st.PeerCertificates[0].SerialNumber, pb.leaf.SerialNumber)
	}
	if st.NegotiatedProtocol != passProto {
		t.Errorf("SNI pass.test: ALPN %q, want the backend's %q", st.NegotiatedProtocol, passProto)
	}
	if pc.greeting != "backend pass.test" {
		t.Errorf("SNI pass.test: greeting %q, want \"backend pass.test\"", pc.greeting)
	}
	if err := pc.roundTrip([]byte("hello through cutover\n")); err != nil {
		t.Errorf("SNI pass.test: %v", err)
	}
	pc.c.Close()

	// A client that trusts cutover's CA only refuses the passthrough
	// certificate: cutover did not terminate.
	passDials++
	if pc, err := dialPass(addr, "pass.test", cutoverCA.pool()); err == nil {
		pc.c.Close()
		t.Error("SNI pass.test verified against cutover's CA: cutover terminated a passthrough connection")
	} else if !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("SNI pass.test, trusting cutover's CA only: %v, want a certificate verification error", err)
	}

	// SNI term.test: cutover's certificate, the HTTP route.
	if got := serialFor(t, addr, "term.test"); got != 7 {
		t.Errorf("SNI term.test: served serial %d, want cutover's 7", got)
	}
	c := httpsClient(cutoverCA, addr)
	defer c.CloseIdleConnections()
	res, err := c.Get("https://term.test/hello")
	if err != nil {
		t.Fatalf("GET https://term.test/hello: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || string(body) != "term /hello" {
		t.Errorf("GET https://term.test/hello = %s %q %v, want 200 \"term /hello\"", res.Status, body, err)
	}
	if got := res.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 7 {
		t.Errorf("GET https://term.test/hello served serial %d, want cutover's 7", got)
	}
	// A client that trusts the backend's CA only refuses cutover's
	// certificate for term.test.
	if conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "term.test", RootCAs: backendCA.pool()}); err == nil {
		conn.Close()
		t.Error("SNI term.test verified against the backend's CA: it was passed through")
	} else if !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("SNI term.test, trusting the backend's CA only: %v, want a certificate verification error", err)
	}

	// Load: 4 workers × 50 connections, each its own handshake with the
	// backend and a 256-byte round trip.
	const workers, perWorker, size = 4, 50, 256
	var mu sync.Mutex
	var failures []string
	var ok atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for w := range workers {
		wg.Go(func() {
			msg := make([]byte, size)
			for i := range perWorker {
				_, _ = rand.Read(msg)
				pc, err := dialPass(addr, "pass.test", backendCA.pool())
				if err == nil {
					if pc.greeting != "backend pass.test" {
						err = fmt.Errorf("greeting %q", pc.greeting)
					} else {
						err = pc.roundTrip(msg)
					}
					pc.c.Close()
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("worker %d conn %d: %v", w, i, err))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	passDials += workers * perWorker
	t.Logf("passthrough load: %d of %d connections ok in %s", ok.Load(), workers*perWorker, time.Since(began).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Errorf("%d of %d passthrough connections failed, first ones:\n%s", len(failures), workers*perWorker,
			strings.Join(failures[:min(len(failures), 10)], "\n"))
	}

	// Every passthrough connection reached the backend and was counted.
	if got := pb.accepted.Load(); got != int64(passDials) {
		t.Errorf("the backend accepted %d connections, want %d", got, passDials)
	}
	pass := map[string]string{"service": "pass"}
	eventually(t, 5*time.Second, func() error {
		if got := metricValue(t, in, "cutover_tcp_connections_total", pass); got != float64(passDials) {
			return fmt.Errorf(`cutover_tcp_connections_total{service="pass"} = %v, want %d`, got, passDials)
		}
		if got := metricValue(t, in, "cutover_tcp_active_connections", pass); got != 0 {
			return fmt.Errorf(`cutover_tcp_active_connections{service="pass"} = %v, want 0`, got)
		}
		return nil
	})
	minBytes := float64(workers * perWorker * size)
	for _, dir := range []string{"in", "out"} {
		if got := metricValue(t, in, "cutover_tcp_bytes_total", map[string]string{"service": "pass", "direction": dir}); got < minBytes {
			t.Errorf(`cutover_tcp_bytes_total{service="pass",direction=%q} = %v, want at least %v`, dir, got, minBytes)
		}
	}
	if got := metricValue(t, in, "cutover_tcp_connect_failures_total", pass); got > 0 {
		t.Errorf(`cutover_tcp_connect_failures_total{service="pass"} = %v, want 0`, got)
	}
	if got := metricValue(t, in, "cutover_tcp_connections_total", map[string]string{"service": "term"}); got > 0 {
		t.Errorf(`cutover_tcp_connections_total{service="term"} = %v: terminated connections counted as TCP`, got)
	}
	if n := term.requests.Load(); n != 1 {
		t.Errorf("term backend got %d requests, want 1", n)
	}
}
