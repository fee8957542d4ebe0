package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cutoverproxy/cutover/discovery"
)

// tlsBackend is an HTTPS server with HTTP/2 that answers with the protocol
// and server name it saw; cert nil means httptest's own certificate (for
// 127.0.0.1, ::1 and example.com).
func tlsBackend(t *testing.T, cert *tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err == nil {
				_ = c.Write(r.Context(), typ, msg)
				_, _, _ = c.Read(r.Context()) // until the client closes
			}
			return
		}
		fmt.Fprintf(w, "%s %s", r.Proto, r.TLS.ServerName)
	}))
	srv.EnableHTTP2 = true
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func httpsService(name string, eps ...discovery.Endpoint) discovery.Service {
	s := service(name, eps...)
	s.Options.Protocol = discovery.HTTPS
	return s
}

func rootsOf(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

func TestHTTPSBackend(t *testing.T) {
	srv := tlsBackend(t, nil)
	h := newHarness(t, Config{BackendRootCAs: rootsOf(srv.Certificate())})
	h.p.Update(snapshot(httpsService("app", endpoint("a", srv))))
	res, body := h.get("/")
	// Addressed by IP: no SNI, the certificate is checked for the IP.
	if res.StatusCode != 200 || body != "HTTP/2.0 " {
		t.Errorf("got %d %q, want 200 %q", res.StatusCode, body, "HTTP/2.0 ")
	}
}

// TestHTTPSBackendByName: a backend addressed by name gets it as SNI and
// must have a certificate for it.
func TestHTTPSBackendByName(t *testing.T) {
	ca, caKey := testCA(t)
	cert := issueFor(t, ca, caKey, "localhost")
	srv := tlsBackend(t, cert)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	h := newHarness(t, Config{BackendRootCAs: rootsOf(ca)})
	h.p.Update(snapshot(httpsService("byname", addrEndpoint("n", "localhost:"+port))))
	if res, body := h.get("/"); res.StatusCode != 200 || body != "HTTP/2.0 localhost" {
		t.Errorf("by name: %d %q, want 200 %q", res.StatusCode, body, "HTTP/2.0 localhost")
	}
	// The same server by IP: its certificate does not name the IP.
	h.p.Update(snapshot(httpsService("byip", endpoint("i", srv))))
	res, body := h.get("/")
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("by IP with a certificate for a name: %d %q, want 503 (no backend could be reached)", res.StatusCode, body)
	}
	if _, msg := h.p.Backend("byip", "i").LastError(); !strings.Contains(msg, "certificate") {
		t.Errorf("last error %q, want a certificate error", msg)
	}
}

// TestHTTPSBackendUnknownCA: the system roots do not know httptest's CA:
// the handshake fails and the request is never sent.
func TestHTTPSBackendUnknownCA(t *testing.T) {
	bad := tlsBackend(t, nil)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(httpsService("app", endpoint("bad", bad))))
	res, _ := h.do(h.request("POST", "app.test", "/", strings.NewReader("x")))
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unknown CA: %d, want 503", res.StatusCode)
	}
	if _, msg := h.p.Backend("app", "bad").LastError(); !strings.Contains(msg, "certificate signed by unknown authority") {
		t.Errorf("last error %q, want unknown authority", msg)
	}
}

// TestHTTPSBackendRedispatch: a backend whose certificate is refused
// costs a POST nothing: it goes to the next backend.
func TestHTTPSBackendRedispatch(t *testing.T) {
	ca, caKey := testCA(t)
	bad := tlsBackend(t, nil) // signed by httptest's own CA, not trusted here
	good := tlsBackend(t, issueFor(t, ca, caKey, "127.0.0.1"))
	h := newHarness(t, Config{BackendRootCAs: rootsOf(ca)})
	h.p.Update(snapshot(httpsService("app", endpoint("bad", bad), endpoint("good", good))))
	for range 4 {
		res, body := h.do(h.request("POST", "app.test", "/", strings.NewReader("x")))
		if res.StatusCode != 200 || body != "HTTP/2.0 " {
			t.Fatalf("POST: %d %q, want 200 from the good backend", res.StatusCode, body)
		}
	}
	if n := h.retries("app"); n == 0 {
		t.Error("no retry counted")
	}
}

// TestHTTPSBackendWebSocket: an upgrade goes over HTTP/1.1 even though
// the backend offers HTTP/2.
func TestHTTPSBackendWebSocket(t *testing.T) {
	srv := tlsBackend(t, nil)
	h := newHarness(t, Config{BackendRootCAs: rootsOf(srv.Certificate())})
	h.p.Update(snapshot(httpsService("app", endpoint("a", srv))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "hello" {
		t.Fatalf("echo: %q, %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// testCA returns a CA certificate and key.
func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// issueFor returns a certificate for host (a name or an IP) signed by ca.
func issueFor(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, host string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
