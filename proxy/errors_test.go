package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

func TestUnknownHost(t *testing.T) {
	h := newHarness(t, Config{})
	svc := service("app", endpoint("a", namedBackend(t, "a")))
	svc.Routes = []discovery.Route{{Host: "app.test", Path: "/"}}
	h.p.Update(snapshot(svc))
	res, body := h.do(h.request("GET", "nowhere.test", "/x", nil))
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, `"nowhere.test"`) {
		t.Errorf("got %d %q, want 404 naming the host", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	h.noWarnings()
}

func TestNoAvailableBackend(t *testing.T) {
	srv := namedBackend(t, "a")
	starting, draining, unhealthy := endpoint("s", srv), endpoint("d", srv), endpoint("u", srv)
	starting.State, draining.State, unhealthy.State = discovery.Starting, discovery.Draining, discovery.Unhealthy
	for name, svc := range map[string]discovery.Service{
		"no endpoints":   service("app"),
		"none ready":     service("app", starting, draining, unhealthy),
		"cookie, none":   withCookie(service("app")),
		"cookie, not up": withCookie(service("app", starting, draining)),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.p.Update(snapshot(svc))
			res, body := h.get("/")
			if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"app"`) {
				t.Errorf("got %d %q, want 503 naming the service", res.StatusCode, body)
			}
			if v := res.Header.Get("Retry-After"); v == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

func withCookie(s discovery.Service) discovery.Service {
	s.Options.Balance = discovery.Balance{Policy: discovery.Cookie, Name: "sticky"}
	return s
}

func TestResponseHeaderTimeout(t *testing.T) {
	g, srv := gatedBackend(t, "a")
	h := newHarness(t, Config{ResponseHeaderTimeout: 50 * time.Millisecond})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))
	res, body := h.get("/")
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("got %d %q, want 504", res.StatusCode, body)
	}
	g.waitArrived(t)
}

func TestClientGone(t *testing.T) {
	g, srv := gatedBackend(t, "a")
	h := newHarness(t, Config{AccessLog: true})
	h.p.Update(snapshot(service("app", endpoint("a", srv), endpoint("b", srv))))

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		res, err := h.client.Do(h.request("POST", "app.test", "/", strings.NewReader("x")).WithContext(ctx))
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	g.waitArrived(t)
	cancel()
	if err := recv(t, errc); !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want canceled", err)
	}
	h.waitServed(1)

	if n := h.metric("cutover_requests_total", "service", "app", "code", "499", "method", "POST"); n != 1 {
		t.Errorf("requests_total{code=499} = %v, want 1", n)
	}
	if h.retries("app") != 0 {
		t.Errorf("retries = %d after the client left, want 0", h.retries("app"))
	}
	for _, id := range []string{"a", "b"} {
		if b := h.p.Backend("app", id); b.Failures() != 0 || b.InFlight() != 0 {
			t.Errorf("backend %s: %d failures, %d in flight; want 0, 0", id, b.Failures(), b.InFlight())
		}
	}
	h.noWarnings()
	if !strings.Contains(h.logs.String(), `"status":499`) {
		t.Errorf("access log has no 499 line: %s", h.logs.String())
	}
}

func TestClientGoneMidBody(t *testing.T) {
	sent := make(chan struct{})
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("first"))
		http.NewResponseController(w).Flush()
		close(sent)
		<-r.Context().Done()
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := h.client.Do(h.request("GET", "app.test", "/", nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sent)
	buf := make([]byte, 5)
	if _, err := res.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	res.Body.Close()
	h.waitServed(1)
	if b := h.p.Backend("app", "a"); b.Failures() != 0 {
		t.Errorf("backend blamed for the client leaving: %d failures", b.Failures())
	}
	h.noWarnings()
}
