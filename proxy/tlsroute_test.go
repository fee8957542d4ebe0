package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

func TestTLSOnlyRedirectAndHSTS(t *testing.T) {
	a := namedBackend(t, "a")
	h := newHarness(t, Config{HTTPSPort: 8443})
	only := hostService("only", "only.test", endpoint("a", a))
	only.Options.TLS = discovery.TLSOptions{Only: true, HSTS: "max-age=600"}
	redir := hostService("redir", "redir.test", endpoint("a", a))
	redir.Options.TLS = discovery.TLSOptions{Only: true, Redirect: true}
	plain := hostService("plain", "plain.test", endpoint("a", a))
	h.p.Update(snapshot(only, redir, plain))

	// Plain HTTP.
	if res, _ := h.do(h.request("GET", "only.test", "/x", nil)); res.StatusCode != 404 {
		t.Errorf("tls-only route over HTTP: %d, want 404", res.StatusCode)
	}
	res, _ := h.do(h.request("POST", "redir.test:8080", "/a/b?c=d", nil))
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "https://redir.test:8443/a/b?c=d" {
		t.Errorf("redirect: %d %q, want 308 to https://redir.test:8443/a/b?c=d", res.StatusCode, res.Header.Get("Location"))
	}
	if res, body := h.do(h.request("GET", "plain.test", "/", nil)); res.StatusCode != 200 || body != "a" || res.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("plain route: %d %q %q", res.StatusCode, body, res.Header.Get("Strict-Transport-Security"))
	}

	// HTTPS.
	front := httptest.NewTLSServer(h.p)
	defer front.Close()
	c := front.Client()
	for _, host := range []string{"only.test", "redir.test", "plain.test"} {
		req, _ := http.NewRequest("GET", front.URL+"/", nil)
		req.Host = host
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := ""
		if host == "only.test" {
			want = "max-age=600"
		}
		if res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") != want {
			t.Errorf("%s over HTTPS: %d, HSTS %q, want 200 and %q", host, res.StatusCode, res.Header.Get("Strict-Transport-Security"), want)
		}
	}
}
