package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTLSCurlHTTP2: curl negotiates HTTP/2 with cutover by ALPN, and
// HTTP/1.1 still works.
func TestTLSCurlHTTP2(t *testing.T) {
	needCurl(t)
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "app", 1, "app.test")
	a := newBackend(t, "a")
	_, addr := startTLS(t, fmt.Sprintf(`
services:
  web:
    host: app.test
    backends: [%s]
`, a.addr()), dir)
	_, port, _ := net.SplitHostPort(addr)
	url := "https://app.test:" + port + "/hello"
	resolve := "app.test:" + port + ":127.0.0.1"
	r := curl(t, "--http2", "--cacert", ca.file, "--resolve", resolve, url)
	if r.version != "2" || r.code != 200 || r.body != "a /hello" {
		t.Errorf("curl --http2: HTTP/%s %d %q, want HTTP/2 200 %q", r.version, r.code, r.body, "a /hello")
	}
	r = curl(t, "--http1.1", "--cacert", ca.file, "--resolve", resolve, url)
	if r.version != "1.1" || r.code != 200 || r.body != "a /hello" {
		t.Errorf("curl --http1.1: HTTP/%s %d %q, want HTTP/1.1 200", r.version, r.code, r.body)
	}
}

// TestH2CPriorKnowledge: with --h2c the HTTP listener speaks cleartext
// HTTP/2 to a client that knows it does, and HTTP/1.1 to the others.
func TestH2CPriorKnowledge(t *testing.T) {
	needCurl(t)
	a := newBackend(t, "a")
	yaml := fmt.Sprintf(`
services:
  web:
    host: app.test
    backends: [%s]
`, a.addr())
	in := start(t, yaml, "--h2c")
	r := curl(t, "--http2-prior-knowledge", "-H", "Host: app.test", in.http+"/x")
	if r.version != "2" || r.code != 200 || r.body != "a /x" {
		t.Errorf("curl --http2-prior-knowledge: HTTP/%s %d %q, want HTTP/2 200 %q", r.version, r.code, r.body, "a /x")
	}
	r = curl(t, "--http1.1", "-H", "Host: app.test", in.http+"/x")
	if r.version != "1.1" || r.code != 200 {
		t.Errorf("curl --http1.1 with --h2c: HTTP/%s %d, want HTTP/1.1 200", r.version, r.code)
	}
	// Without --h2c, the same client gets no HTTP/2.
	plain := start(t, yaml)
	out, err := curlRaw("--silent", "--max-time", "5", "--http2-prior-knowledge", "-H", "Host: app.test", plain.http+"/x")
	if err == nil {
		t.Errorf("prior knowledge without --h2c succeeded: %q", out)
	}
}

// TestTLSSNIChoosesCertificate: exact names, a wildcard, the default for
// unknown names and for a hello without SNI.
func TestTLSSNIChoosesCertificate(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "a", 1, "a.test")
	ca.writePair(t, dir, "b", 2, "b.test")
	ca.writePair(t, dir, "wild", 3, "*.wild.test")
	ca.writePair(t, dir, "fallback", 4, "fallback.test")
	_, addr := startTLS(t, "services: {}\n", dir, "--default-cert", "fallback")
	for _, tt := range []struct {
		sni  string
		want int64
	}{
		{"a.test", 1}, {"b.test", 2}, {"x.wild.test", 3}, {"X.Wild.Test", 3},
		{"y.x.wild.test", 4}, {"other.test", 4}, {"", 4},
	} {
		if got := serialFor(t, addr, tt.sni); got != tt.want {
			t.Errorf("SNI %q: serial %d, want %d", tt.sni, got, tt.want)
		}
	}
}

// TestTLSCertificateReplacedOnDisk: a certificate replaced on disk is
// served to the next handshake; a broken one is logged, shown by the API,
// and the last good one stays in service.
func TestTLSCertificateReplacedOnDisk(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "app", 1, "app.test")
	in, addr := startTLS(t, "services: {}\n", dir)
	if got := serialFor(t, addr, "app.test"); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	ca.writePair(t, dir, "app", 2, "app.test")
	in.waitLog(10*time.Second, func(l map[string]any) bool {
		return l["message"] == "certificate replaced" && l["serial"] == "2"
	})
	if got := serialFor(t, addr, "app.test"); got != 2 {
		t.Fatalf("after the replacement: serial %d, want 2", got)
	}

	// A key that belongs to another certificate.
	_, otherKey := ca.issue(t, 3, "app.test")
	replaceFile(t, filepath.Join(dir, "app.key"), otherKey)
	l := in.waitLog(10*time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["message"]), "certificate problem")
	})
	if l["level"] != "warn" || l["file"] != "app.crt, app.key" || !strings.Contains(fmt.Sprint(l["err"]), "private key does not match") {
		t.Errorf("problem log line %v: want a warning that names app.crt, app.key and the mismatch", l)
	}
	if got := serialFor(t, addr, "app.test"); got != 2 {
		t.Errorf("after a broken save: serial %d, want the last good 2", got)
	}
	res, err := http.Get(in.admin + "/api/v1/services")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		Problems []struct{ Provider, Source, Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 1 || st.Problems[0].Provider != "cert-dir" || !strings.Contains(st.Problems[0].Message, "app.key") {
		t.Errorf("API problems %+v, want the broken app.key", st.Problems)
	}
	if v := metricValue(t, in, "cutover_tls_certificate_problems", nil); v != 1 {
		t.Errorf("cutover_tls_certificate_problems %v, want 1", v)
	}
}

// TestTLSOnlyRedirectAndHSTS: a tls route is 404 on HTTP and served on
// HTTPS with its HSTS header; a redirect-https route answers HTTP with a
// 308 to the HTTPS port.
func TestTLSOnlyRedirectAndHSTS(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "test", 1, "*.example.test")
	a := newBackend(t, "a")
	in, addr := startTLS(t, fmt.Sprintf(`
services:
  only:
    host: only.example.test
    tls: true
    hsts: max-age=600; includeSubDomains
    backends: [%s]
  redir:
    host: redir.example.test
    redirect-https: true
    backends: [%s]
`, a.addr(), a.addr()), dir)
	_, port, _ := net.SplitHostPort(addr)
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, _, err := in.get(plain, "only.example.test", "/"); err != nil || code != 404 {
		t.Errorf("tls route over HTTP: %d %v, want 404", code, err)
	}
	req, _ := http.NewRequest("POST", in.http+"/a/b?c=d", strings.NewReader("x"))
	req.Host = "redir.example.test"
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := "https://redir.example.test:" + port + "/a/b?c=d"
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 308 to %q", res.StatusCode, res.Header.Get("Location"), want)
	}

	c := httpsClient(ca, addr)
	for _, tt := range []struct{ host, hsts string }{
		{"only.example.test", "max-age=600; includeSubDomains"},
		{"redir.example.test", ""},
	} {
		res, err := c.Get("https://" + tt.host + ":" + port + "/p")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "a /p" || res.Header.Get("Strict-Transport-Security") != tt.hsts {
			t.Errorf("%s over HTTPS: %d %q HSTS %q, want 200 %q HSTS %q", tt.host, res.StatusCode, body,
				res.Header.Get("Strict-Transport-Security"), "a /p", tt.hsts)
		}
		if res.ProtoMajor != 2 {
			t.Errorf("%s over HTTPS: %s, want HTTP/2", tt.host, res.Proto)
		}
	}
}

// TestTLSBackendCA: a protocol https backend whose certificate comes from
// a private CA is reached with --backend-ca.
func TestTLSBackendCA(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, 9, "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	yaml := fmt.Sprintf(`
services:
  secure:
    host: secure.test
    protocol: https
    backends: [%s]
`, srv.Listener.Addr())
	in := start(t, yaml, "--backend-ca", ca.file)
	code, body, err := in.get(http.DefaultClient, "secure.test", "/")
	if err != nil || code != 200 || body != "HTTP/2.0 tls=true" {
		t.Errorf("https backend: %d %q %v, want 200 %q", code, body, err, "HTTP/2.0 tls=true")
	}
	// Without the CA, the backend's certificate is refused.
	in = start(t, yaml)
	code, _, err = in.get(http.DefaultClient, "secure.test", "/")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("https backend of an unknown CA: %d %v, want 503", code, err)
	}
}

// TestTLSOffWithoutCertificates: without a certificate source cutover
// says that HTTPS is off and why, and serves HTTP.
func TestTLSOffWithoutCertificates(t *testing.T) {
	in := start(t, "services: {}\n", "--https-addr", "127.0.0.1:0")
	in.waitLog(time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["message"]), "HTTPS is off: no certificate source (--cert-dir")
	})
}

// TestTLSGracefulShutdown: SIGTERM lets a request in flight on HTTPS
// finish, refuses new HTTPS connections, and cutover exits 0.
func TestTLSGracefulShutdown(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "app", 1, "app.test")
	a := newBackend(t, "a")
	in, addr := startTLS(t, fmt.Sprintf(`
services:
  web:
    host: app.test
    backends: [%s]
`, a.addr()), dir, "--shutdown-timeout", "20s")
	_, port, _ := net.SplitHostPort(addr)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := httpsClient(ca, addr).Get("https://app.test:" + port + "/?sleep=1500ms")
		if err != nil {
			done <- result{0, err}
			return
		}
		res.Body.Close()
		done <- result{res.StatusCode, nil}
	}()
	eventually(t, 5*time.Second, func() error {
		if a.requests.Load() == 0 {
			return fmt.Errorf("the slow request has not reached the backend")
		}
		return nil
	})
	in.signal(syscall.SIGTERM)
	eventually(t, 5*time.Second, func() error {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("a new HTTPS connection was still accepted")
		}
		return nil
	})
	if r := <-done; r.err != nil || r.code != 200 {
		t.Fatalf("slow HTTPS request: %d %v, want 200", r.code, r.err)
	}
	if code := in.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}
