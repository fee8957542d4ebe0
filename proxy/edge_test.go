package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

func TestHasDotSegment(t *testing.T) {
	cases := map[string]bool{
		"/": false, "/api": false, "/a.b/c": false, "/.well-known/x": false, "/..x": false, "/x..": false,
		"/.": true, "/..": true, "/api/../admin": true, "/api/./x": true, "/a/..": true, "..": true, "/a/b/.": true,
	}
	for path, want := range cases {
		if got := hasDotSegment(path); got != want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", path, got, want)
		}
	}
}

// A path with dot segments would reach a backend that resolves it outside
// the prefix the proxy routed on; it is refused before routing. Go's
// client does not clean paths, and the encoded form is decoded first.
func TestDotSegmentsRefused(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", namedBackend(t, "a")))))
	for _, path := range []string{"/api/../admin", "/api/%2e%2e/admin", "/x/./y"} {
		res, body := h.get(path)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "..") {
			t.Errorf("%s: got %d %q, want 400", path, res.StatusCode, body)
		}
	}
	if res, _ := h.get("/.well-known/acme"); res.StatusCode != 200 {
		t.Errorf("/.well-known/acme: %d, want 200", res.StatusCode)
	}
}

func TestConnectRefused(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", namedBackend(t, "a")))))
	req := h.request("CONNECT", "app.test", "/", nil)
	res, body := h.do(req)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT: %d %q, want 405", res.StatusCode, body)
	}
}

// Headers a client could use to pose as another client, scheme or host are
// dropped; X-Real-Ip is the peer's address.
func TestSpoofableHeadersDropped(t *testing.T) {
	seen := make(chan http.Header, 1)
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))
	req := h.request("GET", "app.test", "/", nil)
	for _, k := range []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server"} {
		req.Header.Set(k, "6.6.6.6")
	}
	h.do(req)
	got := <-seen
	for _, k := range []string{"Forwarded", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server"} {
		if v := got.Get(k); v != "" {
			t.Errorf("%s = %q reached the backend", k, v)
		}
	}
	if v := got.Get("X-Real-Ip"); v != "127.0.0.1" {
		t.Errorf("X-Real-Ip = %q, want the peer 127.0.0.1", v)
	}
}

// A retry looks at the current table: a backend that failed while a new
// table replaced it is retried among the new table's backends.
func TestRetryFollowsTheCurrentTable(t *testing.T) {
	g, old := gatedBackend(t, "old")
	fresh := namedBackend(t, "fresh")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("old", old))))
	done := make(chan string, 1)
	go func() {
		res, body := h.get("/")
		done <- res.Status + " " + body
	}()
	g.waitArrived(t)
	draining := endpoint("old", old)
	draining.State = discovery.Draining
	h.p.Update(snapshot(service("app", draining, endpoint("fresh", fresh))))
	old.CloseClientConnections() // the old container exits
	if got := <-done; !strings.HasSuffix(got, "fresh") {
		t.Fatalf("got %q, want the answer of the backend of the new table", got)
	}
}

// An outage logs one line a second per service, not one per request.
func TestFailureLogsAreRateLimited(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app")))
	for range 50 {
		h.get("/")
	}
	if n := strings.Count(h.logs.String(), `"level":"warn"`); n != 1 {
		t.Errorf("%d warnings for 50 failed requests within a second, want 1:\n%s", n, h.logs.String())
	}
}
