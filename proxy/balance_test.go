package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// countBackends sends n GETs and counts the answers by backend name.
func countBackends(h *harness, n int) map[string]int {
	h.t.Helper()
	counts := map[string]int{}
	for range n {
		res, body := h.get("/")
		if res.StatusCode != http.StatusOK {
			h.t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		counts[body]++
	}
	return counts
}

func TestBalanceRoundRobin(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		endpoint("a", namedBackend(t, "a")),
		endpoint("b", namedBackend(t, "b")),
		endpoint("c", namedBackend(t, "c")))))
	got := countBackends(h, 30)
	for _, name := range []string{"a", "b", "c"} {
		if got[name] != 10 {
			t.Errorf("30 requests over 3 backends: %v, want 10 each", got)
			break
		}
	}
}

func TestBalanceWeights(t *testing.T) {
	a, b := endpoint("a", namedBackend(t, "a")), endpoint("b", namedBackend(t, "b"))
	a.Weight, b.Weight = 1, 2
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", a, b)))
	if got := countBackends(h, 30); got["a"] != 10 || got["b"] != 20 {
		t.Errorf("30 requests, weights 1:2: %v, want a:10 b:20", got)
	}
}

func TestBalanceCookie(t *testing.T) {
	svc := service("app",
		endpoint("a", namedBackend(t, "a")),
		endpoint("b", namedBackend(t, "b")),
		endpoint("c", namedBackend(t, "c")))
	svc.Options.Balance = discovery.Balance{Policy: discovery.Cookie, Name: "sticky"}
	h := newHarness(t, Config{})
	h.p.Update(snapshot(svc))

	res, first := h.get("/")
	set := res.Header.Values("Set-Cookie")
	if len(set) != 1 || !strings.HasPrefix(set[0], "sticky=") {
		t.Fatalf("first answer sets cookies %q, want one named sticky", set)
	}
	cookie := strings.SplitN(set[0], ";", 2)[0]
	if key := strings.TrimPrefix(cookie, "sticky="); key != h.p.Backend("app", first).Key() {
		t.Errorf("cookie %q does not hold the key of backend %s", cookie, first)
	}
	for range 10 {
		req := h.request("GET", "app.test", "/", nil)
		req.Header.Set("Cookie", "other=1; "+cookie)
		res, body := h.do(req)
		if body != first {
			t.Fatalf("client with cookie %q went to %s, then %s", cookie, first, body)
		}
		if v := res.Header.Values("Set-Cookie"); len(v) != 0 {
			t.Errorf("cookie set again although it matched: %q", v)
		}
	}

	// A client whose backend went away is moved and gets a new cookie.
	svc.Endpoints = slices.DeleteFunc(slices.Clone(svc.Endpoints), func(ep discovery.Endpoint) bool { return ep.ID == first })
	h.p.Update(snapshot(svc))
	req := h.request("GET", "app.test", "/", nil)
	req.Header.Set("Cookie", cookie)
	res, body := h.do(req)
	if body == first {
		t.Fatalf("request went to removed backend %s", first)
	}
	if v := res.Header.Values("Set-Cookie"); len(v) != 1 || !strings.HasPrefix(v[0], "sticky="+h.p.Backend("app", body).Key()+";") {
		t.Errorf("moved client got Set-Cookie %q", v)
	}
}
