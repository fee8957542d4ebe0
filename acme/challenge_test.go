package acme

import (
	"context"
	"crypto/tls"
	"encoding/asn1"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestHTTPHandler(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := httpProvider{m.challenges}
	if err := p.Present(ctx, "a.example", "tok-1_x", "tok-1_x.thumb"); err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := m.HTTPHandler(next)
	const path = "/.well-known/acme-challenge/"

	tests := []struct {
		method, host, path string
		code               int
		body               string
	}{
		{"GET", "a.example", path + "tok-1_x", 200, "tok-1_x.thumb"},
		{"GET", "a.example:80", path + "tok-1_x", 200, "tok-1_x.thumb"},
		{"GET", "A.Example.", path + "tok-1_x", 200, "tok-1_x.thumb"},
		{"HEAD", "a.example", path + "tok-1_x", 200, "tok-1_x.thumb"}, // the recorder keeps what a server drops
		{"POST", "a.example", path + "tok-1_x", http.StatusTeapot, ""},
		{"GET", "b.example", path + "tok-1_x", http.StatusTeapot, ""}, // token of another host
		{"GET", "a.example", path + "other", http.StatusTeapot, ""},
		{"GET", "a.example", path, http.StatusTeapot, ""},
		{"GET", "a.example", "/", http.StatusTeapot, ""},
		{"GET", "a.example", "/.well-known/acme-challengex/tok-1_x", http.StatusTeapot, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		if w.Code != tt.code || string(body) != tt.body {
			t.Errorf("%s %s%s = %d %q, want %d %q", tt.method, tt.host, tt.path, w.Code, body, tt.code, tt.body)
		}
		if w.Code == 200 && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
		}
	}

	if err := p.CleanUp(ctx, "a.example", "tok-1_x", "tok-1_x.thumb"); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "http://a.example"+path+"tok-1_x", nil))
	if w.Code != http.StatusTeapot {
		t.Errorf("after CleanUp: %d, want the next handler", w.Code)
	}
	w = httptest.NewRecorder()
	m.HTTPHandler(nil).ServeHTTP(w, httptest.NewRequest("GET", "http://a.example/", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("HTTPHandler(nil): %d, want 404", w.Code)
	}
}

func TestGetCertificateTLSALPN01(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := alpnProvider{m.challenges}
	alpn := &tls.ClientHelloInfo{ServerName: "a.example", SupportedProtos: []string{ACMETLS1Protocol}}

	if c, err := m.GetCertificate(alpn); c != nil || err == nil {
		t.Errorf("acme-tls/1 hello without a pending challenge = %v, %v; want an error", c, err)
	}
	if err := p.Present(ctx, "a.example", "tok", "tok.thumb"); err != nil {
		t.Fatal(err)
	}
	c, err := m.GetCertificate(alpn)
	if err != nil || c == nil {
		t.Fatalf("acme-tls/1 hello = %v, %v", c, err)
	}
	if !slices.Contains(c.Leaf.DNSNames, "a.example") || !hasACMEExtension(c) {
		t.Errorf("challenge certificate for %v, acmeIdentifier extension %v", c.Leaf.DNSNames, hasACMEExtension(c))
	}
	upper := &tls.ClientHelloInfo{ServerName: "A.EXAMPLE", SupportedProtos: []string{ACMETLS1Protocol}}
	if c2, err := m.GetCertificate(upper); c2 != c || err != nil {
		t.Errorf("acme-tls/1 hello in upper case = %v, %v", c2, err)
	}
	// An ordinary hello for the name does not get the challenge certificate.
	if c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example", SupportedProtos: []string{"h2"}}); c != nil || err != nil {
		t.Errorf("ordinary hello for an unmanaged name = %v, %v; want nil, nil", c, err)
	}
	if err := p.CleanUp(ctx, "a.example", "tok", "tok.thumb"); err != nil {
		t.Fatal(err)
	}
	if c, err := m.GetCertificate(alpn); c != nil || err == nil {
		t.Errorf("acme-tls/1 hello after CleanUp = %v, %v; want an error", c, err)
	}
}

// hasACMEExtension reports whether c carries the critical acmeIdentifier
// extension of RFC 8737.
func hasACMEExtension(c *tls.Certificate) bool {
	id := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}
	for _, e := range c.Leaf.Extensions {
		if e.Id.Equal(id) && e.Critical {
			return true
		}
	}
	return false
}

func TestNextProtos(t *testing.T) {
	m, _ := New(Config{DataDir: t.TempDir()})
	if got := m.NextProtos(); !slices.Equal(got, []string{"acme-tls/1"}) {
		t.Errorf("NextProtos() = %v", got)
	}
	m, _ = New(Config{DataDir: t.TempDir(), DisableTLSALPN01: true})
	if got := m.NextProtos(); len(got) != 0 {
		t.Errorf("NextProtos() with TLS-ALPN-01 disabled = %v", got)
	}
}
