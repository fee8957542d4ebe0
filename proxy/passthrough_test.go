package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// passthroughFront is the HTTPS side of a test: a listener wrapped by
// Passthrough and an HTTPS server of the proxy on what it returns.
type passthroughFront struct {
	addr string
	pt   net.Listener
}

func newPassthroughFront(t *testing.T, h *harness, cert tls.Certificate) *passthroughFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pt := h.p.Passthrough(ln)
	srv := &http.Server{Handler: h.p}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(pt, &tls.Config{Certificates: []tls.Certificate{cert}}))
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return &passthroughFront{addr: ln.Addr().String(), pt: pt}
}

// client returns an HTTPS client that dials the front for every host and
// trusts only roots.
func (f *passthroughFront) client(t *testing.T, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testTimeout}
}

// tlsEcho is an HTTPS backend with its own certificate that answers with
// the server name the client asked for.
func tlsEcho(t *testing.T, cert tls.Certificate) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "backend saw "+r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func passthroughService(name, host string, eps ...discovery.Endpoint) discovery.Service {
	s := hostService(name, host, eps...)
	s.Options.Protocol = discovery.TCP
	s.Options.TLS.Passthrough = true
	return s
}

func TestPassthroughForwardsTheHandshakeToTheBackend(t *testing.T) {
	backendCert, backendRoots := selfSigned(t, "pass.test")
	frontCert, frontRoots := selfSigned(t, "web.test")
	backend := tlsEcho(t, backendCert)
	web := namedBackend(t, "web")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(
		passthroughService("pass", "pass.test", addrEndpoint("b", backend.Listener.Addr().String())),
		hostService("web", "web.test", endpoint("w", web)),
	))
	front := newPassthroughFront(t, h, frontCert)

	// The client trusts the backend's certificate only: the handshake
	// succeeds only with the backend.
	res, err := front.client(t, backendRoots).Get("https://pass.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "backend saw pass.test" || !res.TLS.PeerCertificates[0].Equal(backendCert.Leaf) {
		t.Errorf("passthrough: %q from %s, want the backend's answer and certificate", body, res.TLS.PeerCertificates[0].Subject)
	}

	// Another name is the caller's: its TLS server terminates it.
	res, err = front.client(t, frontRoots).Get("https://web.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "web" {
		t.Errorf("terminated route: %q, want web", body)
	}

	if got := h.metric("cutover_tcp_connections_total", "service", "pass"); got != 1 {
		t.Errorf("passthrough connections: %v, want 1", got)
	}
	if got := h.metric("cutover_tcp_connections_total", "service", "web"); got != -1 {
		t.Errorf("a terminated service has TCP series: %v", got)
	}
}

// chunkedConn writes one byte at a time: a ClientHello in many segments.
type chunkedConn struct{ net.Conn }

func (c chunkedConn) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

func TestPassthroughHelloInManySegments(t *testing.T) {
	backendCert, backendRoots := selfSigned(t, "pass.test")
	frontCert, _ := selfSigned(t, "front.test")
	backend := tlsEcho(t, backendCert)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(passthroughService("pass", "*.test", addrEndpoint("b", backend.Listener.Addr().String()))))
	front := newPassthroughFront(t, h, frontCert)
	raw, err := net.Dial("tcp", front.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(chunkedConn{raw}, &tls.Config{ServerName: "pass.test", RootCAs: backendRoots})
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake through a wildcard passthrough route: %v", err)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: pass.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := io.ReadAll(c)
	if err != nil || !strings.HasSuffix(string(res), "backend saw pass.test") {
		t.Errorf("answer: %q, %v", res, err)
	}
}

func TestPassthroughReturnsOtherConnectionsWithTheirBytes(t *testing.T) {
	h := newHarness(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pt := h.p.Passthrough(ln)
	defer pt.Close()

	// A client that sends nothing does not hold up the next one.
	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	const msg = "GET / HTTP/1.0\r\n\r\n"
	if _, err := io.WriteString(plain, msg); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := pt.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c := recv(t, accepted)
	defer c.Close()
	if c.RemoteAddr().String() != plain.LocalAddr().String() {
		t.Fatalf("Accept returned %s, want the client that sent bytes (%s)", c.RemoteAddr(), plain.LocalAddr())
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("bytes returned: %q, %v; want %q", got, err, msg)
	}

	// Close ends the wait for the slow client's hello at once.
	start := time.Now()
	if err := pt.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := slow.Read(make([]byte, 1)); err == nil {
		t.Error("slow client's connection open after Close")
	}
	if d := time.Since(start); d > helloTimeout/2 {
		t.Errorf("Close took %s", d)
	}
	if _, err := pt.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func TestPassthroughServerNameLookup(t *testing.T) {
	h := newHarness(t, Config{})
	ep := addrEndpoint("x", "127.0.0.1:1")
	both := hostService("both-http", "both.test", ep)
	both.Routes[0].Path = "/api"
	httpPass := hostService("http-pass", "legacy.test", ep)
	httpPass.Options.TLS.Passthrough = true
	plainTCP := tcpService("db", 0, ep)
	plainTCP.Routes = []discovery.Route{{Host: "db.test", Path: "/"}}
	h.p.Update(snapshot(
		passthroughService("wild", "*.example.test", ep),
		hostService("api", "api.example.test", ep),
		passthroughService("exact", "exact.example.test", ep),
		passthroughService("deeper", "*.eu.example.test", ep),
		passthroughService("both-pass", "both.test", ep),
		both, httpPass, plainTCP,
	))
	r := h.p.loadTCPRoutes()
	for name, want := range map[string]string{
		"a.example.test":     "wild",
		"x.y.example.test":   "wild",
		"API.Example.Test":   "", // a terminated route with a more specific host
		"exact.example.test": "exact",
		"a.eu.example.test":  "deeper",
		"example.test":       "",
		"both.test":          "both-pass", // no path in a server name
		"legacy.test":        "http-pass",
		"db.test":            "", // protocol tcp without passthrough
		"":                   "",
		"other.test":         "",
	} {
		got := ""
		if svc := r.passthrough(name); svc != nil {
			got = svc.Name()
		}
		if got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

func TestReadClientHelloKeepsEveryByte(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		defer client.Close()
		c := tls.Client(client, &tls.Config{ServerName: "Mixed.Case.test", InsecureSkipVerify: true})
		_ = c.Handshake() // fails: nobody answers
	}()
	_ = server.SetReadDeadline(time.Now().Add(testTimeout))
	name, read, ok := readClientHello(server)
	if !ok || name != "mixed.case.test" && name != "Mixed.Case.test" {
		t.Fatalf("server name %q, %v", name, ok)
	}
	// What was read is a whole TLS record: a handshake record whose
	// length covers the rest.
	if len(read) < 5 || read[0] != 0x16 || int(read[3])<<8|int(read[4]) != len(read)-5 {
		t.Errorf("read %d bytes, not one whole handshake record: % x", len(read), read[:min(len(read), 5)])
	}
}
