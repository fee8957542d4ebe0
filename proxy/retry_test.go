package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRetryRefusedBackend(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		addrEndpoint("down", refusedAddr(t)),
		endpoint("up", namedBackend(t, "up")))))
	const n = 10
	for range n {
		if res, body := h.get("/"); res.StatusCode != http.StatusOK || body != "up" {
			t.Fatalf("got %d %q, want 200 from the live backend", res.StatusCode, body)
		}
	}
	down := h.p.Backend("app", "down")
	retries := h.retries("app")
	if retries == 0 || retries != down.Requests() || down.Failures() != down.Requests() {
		t.Errorf("retries %d, refused backend tried %d times and failed %d: want equal and > 0",
			retries, down.Requests(), down.Failures())
	}
	if up := h.p.Backend("app", "up").Requests(); up != n {
		t.Errorf("live backend got %d requests, want %d", up, n)
	}
	if _, msg := down.LastError(); !strings.Contains(msg, "refused") {
		t.Errorf("refused backend's last error %q", msg)
	}
}

func TestRetryPostAfterRefusedDial(t *testing.T) {
	got := make(chan string, 1)
	live := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		addrEndpoint("down", refusedAddr(t)),
		endpoint("up", live))))
	body := strings.Repeat("0123456789", 10000)
	for range 2 { // the round robin starts at either backend
		res, _ := h.do(h.request("POST", "app.test", "/", strings.NewReader(body)))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", res.StatusCode)
		}
		if b := recv(t, got); b != body {
			t.Fatalf("live backend got %d bytes, want %d", len(b), len(body))
		}
	}
	if down := h.p.Backend("app", "down").Requests(); down == 0 || h.retries("app") != down {
		t.Errorf("retries = %d, refused backend tried %d times: want equal and > 0", h.retries("app"), down)
	}
}

func TestRetryIdempotentAfterHangUp(t *testing.T) {
	var hits atomic.Int64
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		endpoint("hangup", hangUpBackend(t, &hits)),
		endpoint("up", namedBackend(t, "up")))))
	for range 4 {
		if res, body := h.get("/"); res.StatusCode != http.StatusOK || body != "up" {
			t.Fatalf("got %d %q, want 200 from the live backend", res.StatusCode, body)
		}
	}
	if hits.Load() == 0 || uint64(hits.Load()) != h.retries("app") {
		t.Errorf("hang-up backend got %d requests, retries %d: want equal and > 0", hits.Load(), h.retries("app"))
	}
}

func TestNoRetryPostAfterHangUp(t *testing.T) {
	var hits, liveHits atomic.Int64
	live := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		liveHits.Add(1)
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("hangup", hangUpBackend(t, &hits)))))
	res, body := h.do(h.request("POST", "app.test", "/", strings.NewReader("not twice")))
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d %q, want 502", res.StatusCode, body)
	}
	// With a second backend, a POST that may have reached the first one
	// is still not sent again.
	h.p.Update(snapshot(service("app",
		endpoint("hangup", hangUpBackend(t, &hits)),
		endpoint("up", live))))
	hits.Store(0)
	for range 2 {
		res, body := h.do(h.request("POST", "app.test", "/", strings.NewReader("not twice")))
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d %q", res.StatusCode, body)
		}
	}
	if hits.Load() != 1 || liveHits.Load() != 1 || h.retries("app") != 0 {
		t.Errorf("hang-up backend %d, live %d, retries %d: want 1, 1, 0", hits.Load(), liveHits.Load(), h.retries("app"))
	}
}

func TestRetryNeverSameBackendTwice(t *testing.T) {
	var a, b, c atomic.Int64
	h := newHarness(t, Config{Attempts: 10})
	h.p.Update(snapshot(service("app",
		endpoint("a", hangUpBackend(t, &a)),
		endpoint("b", hangUpBackend(t, &b)),
		endpoint("c", hangUpBackend(t, &c)))))
	res, body := h.get("/")
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d %q, want 502", res.StatusCode, body)
	}
	if a.Load() != 1 || b.Load() != 1 || c.Load() != 1 {
		t.Errorf("backends got %d, %d, %d requests, want 1 each", a.Load(), b.Load(), c.Load())
	}
	if h.retries("app") != 2 {
		t.Errorf("retries = %d, want 2", h.retries("app"))
	}
}

func TestRetryAllDown(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		addrEndpoint("a", refusedAddr(t)),
		addrEndpoint("b", refusedAddr(t)))))
	res, body := h.get("/")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"app"`) || res.Header.Get("Retry-After") == "" {
		t.Errorf("got %d %q, want 503 with Retry-After naming the service: no backend could be reached", res.StatusCode, body)
	}
	if h.retries("app") != 1 {
		t.Errorf("retries = %d, want 1", h.retries("app"))
	}
}

func TestRetryDisabled(t *testing.T) {
	h := newHarness(t, Config{Attempts: 1})
	h.p.Update(snapshot(service("app",
		addrEndpoint("a", refusedAddr(t)),
		addrEndpoint("b", refusedAddr(t)))))
	res, _ := h.get("/")
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503 (no backend could be reached)", res.StatusCode)
	}
	tried := h.p.Backend("app", "a").Requests() + h.p.Backend("app", "b").Requests()
	if tried != 1 || h.retries("app") != 0 {
		t.Errorf("attempts %d, retries %d: want 1, 0", tried, h.retries("app"))
	}
}
