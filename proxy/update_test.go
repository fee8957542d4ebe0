package proxy

import (
	"context"
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

// result is a response as seen by a client goroutine.
type result struct {
	code int
	body string
	err  error
}

// goGet sends a GET in a goroutine and returns where its result arrives.
func (h *harness) goGet(path string) <-chan result {
	req := h.request("GET", "app.test", path, nil)
	out := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		res, err := h.client.Do(req.WithContext(ctx))
		if err != nil {
			out <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		out <- result{code: res.StatusCode, body: string(b), err: err}
	}()
	return out
}

func wantResult(t *testing.T, ch <-chan result, body string) {
	t.Helper()
	r := recv(t, ch)
	if r.err != nil || r.code != http.StatusOK || r.body != body {
		t.Errorf("in-flight request: %d %q %v, want 200 %q", r.code, r.body, r.err, body)
	}
}

func TestUpdateKeepsBackends(t *testing.T) {
	g, slow := gatedBackend(t, "a")
	h := newHarness(t, Config{})
	a := endpoint("a", slow)
	h.p.Update(snapshot(service("app", a)))
	before := h.p.Backend("app", "a")

	pending := h.goGet("/slow")
	g.waitArrived(t)

	// Same endpoint, new name and weight, another endpoint and route.
	a.Name, a.Weight = "a-renamed", 3
	svc := service("app", a, endpoint("b", namedBackend(t, "b")))
	svc.Routes = append(svc.Routes, discovery.Route{Host: "new.test", Path: "/"})
	h.p.Update(snapshot(svc))

	after := h.p.Backend("app", "a")
	if after != before {
		t.Fatal("backend replaced by an update that kept its ID and address")
	}
	if after.InFlight() != 1 || after.Requests() != 1 || after.State() != "up" {
		t.Errorf("kept backend: in flight %d, requests %d, state %s; want 1, 1, up",
			after.InFlight(), after.Requests(), after.State())
	}
	if after.Name() != "a-renamed" || after.Weight() != 3 {
		t.Errorf("kept backend: name %q weight %d, want the new ones", after.Name(), after.Weight())
	}
	g.open()
	wantResult(t, pending, "a")
	h.waitServed(1)
	if after.InFlight() != 0 {
		t.Errorf("in flight after the request = %d", after.InFlight())
	}
}

func TestUpdateReplacesAndRemoves(t *testing.T) {
	h := newHarness(t, Config{})
	one, two := namedBackend(t, "one"), namedBackend(t, "two")
	h.p.Update(snapshot(service("app", endpoint("a", one), endpoint("b", one))))
	a, b := h.p.Backend("app", "a"), h.p.Backend("app", "b")

	// a moves to another address; b goes away.
	h.p.Update(snapshot(service("app", endpoint("a", two))))
	a2 := h.p.Backend("app", "a")
	if a2 == a || a2.Address() != two.Listener.Addr().String() {
		t.Fatalf("backend whose address changed: same object %v, address %s", a2 == a, a2.Address())
	}
	if a.State() != "removed" || a2.State() != "up" {
		t.Errorf("old backend %s, new %s; want removed, up", a.State(), a2.State())
	}
	if b.State() != "removed" || h.p.Backend("app", "b") != nil {
		t.Errorf("removed endpoint: state %s, still in table %v", b.State(), h.p.Backend("app", "b") != nil)
	}
	if _, body := h.get("/"); body != "two" {
		t.Errorf("request went to %q, want two", body)
	}

	// An endpoint that comes back is a new backend that starts afresh.
	h.p.Update(snapshot(service("app", endpoint("a", two), endpoint("b", one))))
	if b2 := h.p.Backend("app", "b"); b2 == b || b2.State() != "up" {
		t.Errorf("returning endpoint: reused %v, state %s", b2 == b, b2.State())
	}
	// The same endpoint ID in another service is another backend.
	h.p.Update(snapshot(service("app", endpoint("a", two)), service("other", endpoint("a", two))))
	if h.p.Backend("app", "a") == h.p.Backend("other", "a") {
		t.Error("two services share a backend object")
	}
}

func TestUpdateDrainingFinishesInFlight(t *testing.T) {
	g, slow := gatedBackend(t, "a")
	h := newHarness(t, Config{})
	a, b := endpoint("a", slow), endpoint("b", namedBackend(t, "b"))
	h.p.Update(snapshot(service("app", a)))
	pending := h.goGet("/slow")
	g.waitArrived(t)

	a.State = discovery.Draining
	h.p.Update(snapshot(service("app", a, b)))
	if s := h.p.Backend("app", "a").State(); s != "draining" {
		t.Errorf("state %s, want draining", s)
	}
	for range 10 {
		if _, body := h.get("/"); body != "b" {
			t.Fatalf("new request went to %q while a drains", body)
		}
	}
	g.open()
	wantResult(t, pending, "a")
	if n := h.p.Backend("app", "a").Requests(); n != 1 {
		t.Errorf("draining backend got %d requests, want 1", n)
	}
}

func TestUpdateInFlightKeepsOldTable(t *testing.T) {
	g, slow := gatedBackend(t, "a")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", slow))))
	old := h.p.Backend("app", "a")
	pending := h.goGet("/slow")
	g.waitArrived(t)

	// The new table routes elsewhere and no longer has a.
	h.p.Update(snapshot(service("app", endpoint("b", namedBackend(t, "b")))))
	if old.State() != "removed" {
		t.Errorf("state %s, want removed", old.State())
	}
	if _, body := h.get("/"); body != "b" {
		t.Errorf("new request went to %q, want b", body)
	}
	g.open()
	wantResult(t, pending, "a")
}

// After the last request on a removed backend, the connection it used is
// closed rather than kept idle until IdleConnTimeout.
func TestRemovedBackendConnectionClosed(t *testing.T) {
	for _, state := range []string{"removed", "draining"} {
		t.Run(state, func(t *testing.T) {
			closed := make(chan struct{}, 8)
			g := make(chan struct{})
			arrived := make(chan struct{}, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-g
				_, _ = io.WriteString(w, "a")
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateClosed {
					closed <- struct{}{}
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			t.Cleanup(func() {
				select {
				case <-g:
				default:
					close(g)
				}
			})

			h := newHarness(t, Config{})
			a := endpoint("a", srv)
			h.p.Update(snapshot(service("app", a)))
			pending := h.goGet("/")
			recv(t, arrived)
			if state == "removed" {
				h.p.Update(snapshot(service("app")))
			} else {
				a.State = discovery.Draining
				h.p.Update(snapshot(service("app", a)))
			}
			close(g)
			wantResult(t, pending, "a")
			recv(t, closed)
		})
	}
}

// TestUpdateRebuildsOnlyChangedServices checks that a service whose
// configuration is unchanged keeps its Service from the table before,
// while a changed one is rebuilt and a removed one is taken out.
func TestUpdateRebuildsOnlyChangedServices(t *testing.T) {
	h := newHarness(t, Config{})
	one, two := namedBackend(t, "one"), namedBackend(t, "two")
	snap := func(bEndpoints ...discovery.Endpoint) discovery.Snapshot {
		// Fresh slices every time, as a provider's snapshots have.
		a := service("a", endpoint("a1", one), endpoint("a2", two))
		a.Routes = []discovery.Route{{Host: "a.test", Path: "/"}}
		b := service("b", bEndpoints...)
		b.Routes = []discovery.Route{{Host: "b.test", Path: "/"}}
		return snapshot(a, b)
	}
	h.p.Update(snap(endpoint("b1", one), endpoint("b2", two)))
	svcA, svcB := h.p.Table().Service("a"), h.p.Table().Service("b")
	a1, b1, b2 := h.p.Backend("a", "a1"), h.p.Backend("b", "b1"), h.p.Backend("b", "b2")

	// b loses b2 and changes b1's weight; a is unchanged.
	w := endpoint("b1", one)
	w.Weight = 5
	h.p.Update(snap(w))
	if got := h.p.Table().Service("a"); got != svcA {
		t.Error("the unchanged service a was rebuilt")
	}
	if got := h.p.Table().Service("b"); got == svcB || len(got.Backends()) != 1 {
		t.Fatalf("the changed service b: same Service %v, %d backends; want a new one with 1", got == svcB, len(got.Backends()))
	}
	if h.p.Backend("b", "b1") != b1 || b1.Weight() != 5 || b1.State() != "up" {
		t.Errorf("b1: kept %v, weight %d, state %s; want kept, 5, up", h.p.Backend("b", "b1") == b1, b1.Weight(), b1.State())
	}
	if b2.State() != "removed" {
		t.Errorf("b2 left the configuration but is %s", b2.State())
	}
	if a1.State() != "up" {
		t.Errorf("a1 of the unchanged service is %s", a1.State())
	}
	if res, body := h.do(h.request("GET", "b.test", "/", nil)); res.StatusCode != http.StatusOK || body != "one" {
		t.Errorf("b.test: %d %q, want 200 one", res.StatusCode, body)
	}

	// b leaves: its backends and its counters go; a stays as it was.
	h.p.Update(snapshot(snap().Services[0]))
	if b1.State() != "removed" || h.p.Table().Service("b") != nil {
		t.Errorf("removed service: b1 %s, still in the table %v", b1.State(), h.p.Table().Service("b") != nil)
	}
	h.p.mu.Lock()
	_, counted := h.p.stats["b"]
	h.p.mu.Unlock()
	if counted || h.p.Table().Service("a") != svcA || a1.State() != "up" {
		t.Errorf("after b left: its counters kept %v, a rebuilt %v, a1 %s", counted, h.p.Table().Service("a") != svcA, a1.State())
	}
}

// TestTransportsMadeOnFirstUse checks that a backend gets its round
// tripper at its first request, and a plain-HTTP backend net/http's
// Transport only for a request the fast path does not carry.
func TestTransportsMadeOnFirstUse(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", namedBackend(t, "a")))))
	b := h.p.Backend("app", "a")
	if b.conns.Load() != nil {
		t.Fatal("Update made the backend's connections before any request")
	}
	if res, body := h.get("/"); res.StatusCode != http.StatusOK || body != "a" {
		t.Fatalf("GET: %d %q", res.StatusCode, body)
	}
	c := b.conns.Load()
	if c == nil || c.fast == nil {
		t.Fatalf("a GET left the backend with connections %+v, want a fast path", c)
	}
	slow := c.rt.(dualTransport).slow
	if slow.tr.Load() != nil {
		t.Error("a GET made the backend's net/http Transport")
	}
	res, body := h.do(h.request("POST", "app.test", "/", strings.NewReader("payload")))
	if res.StatusCode != http.StatusOK || body != "a" {
		t.Fatalf("POST: %d %q", res.StatusCode, body)
	}
	if slow.tr.Load() == nil {
		t.Error("a POST went through no net/http Transport")
	}
	if b.conns.Load() != c {
		t.Error("the second request made the backend's connections again")
	}
}

// TestConnectionsOfRemovedBackend checks that connections made after the
// backend was removed (by a request that picked it just before) keep no
// connection and fail their dials, and that removing a backend that
// never had a request makes none.
func TestConnectionsOfRemovedBackend(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", namedBackend(t, "a")))))
	b := h.p.Backend("app", "a")
	h.p.Update(snapshot())
	if !b.removed() || b.conns.Load() != nil {
		t.Fatalf("after removal: removed %v, connections %v", b.removed(), b.conns.Load())
	}
	c := b.connections()
	if !c.fast.closed.Load() {
		t.Error("the fast path of a removed backend keeps connections")
	}
	conn, err := c.fast.dial(context.Background(), "tcp", b.addr)
	if err == nil {
		conn.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("dial after removal: %v, want context.Canceled", err)
	}
}

// TestDialAfterLifeEndedFails checks that a dial that starts after the
// backend's life ended fails every time: context.AfterFunc cancels on a
// goroutine of its own, which a dial on loopback can outrun.
func TestDialAfterLifeEndedFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	life, end := context.WithCancel(context.Background())
	end()
	dial := transport{dialTimeout: time.Second}.dialer(life, ln.Addr().String())
	for i := range 200 {
		conn, err := dial(context.Background(), "tcp", "")
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, context.Canceled) || !isDialError(err) {
			t.Fatalf("dial %d after the backend's life ended: %v, want a dialError of context.Canceled", i, err)
		}
	}
}

// TestUpdateWithDuplicateNames checks that a snapshot naming one service
// twice (which the Merger never sends, but Update accepts) leaves the
// next table's service with live backends.
func TestUpdateWithDuplicateNames(t *testing.T) {
	h := newHarness(t, Config{})
	one := namedBackend(t, "one")
	x, y := service("app", endpoint("e1", one)), service("app", endpoint("e1", one))
	y.Routes = []discovery.Route{{Path: "/y"}}
	h.p.Update(snapshot(x, y))
	h.p.Update(snapshot(y))
	if b := h.p.Backend("app", "e1"); b == nil || b.State() != "up" {
		t.Fatalf("backend after the duplicate left: %v", b)
	}
	if res, body := h.get("/y"); res.StatusCode != http.StatusOK || body != "one" {
		t.Errorf("GET /y: %d %q, want 200 one", res.StatusCode, body)
	}

	// A name that becomes duplicate: the first service, unchanged, must
	// keep a live backend.
	h2 := newHarness(t, Config{})
	two := namedBackend(t, "two")
	a, b := service("app", endpoint("e1", one)), service("app", endpoint("e2", two))
	b.Routes = []discovery.Route{{Path: "/y"}}
	h2.p.Update(snapshot(a))
	h2.p.Update(snapshot(a, b))
	if res, body := h2.get("/"); res.StatusCode != http.StatusOK || body != "one" {
		t.Errorf("GET / after the name became duplicate: %d %q, want 200 one", res.StatusCode, body)
	}
}
