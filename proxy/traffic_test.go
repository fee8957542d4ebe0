package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// containerEndpoint is the endpoint of port 8080 of a Docker container,
// served by srv.
func containerEndpoint(container string, srv *httptest.Server) discovery.Endpoint {
	return discovery.Endpoint{ID: container + ":8080", Name: container, Address: srv.Listener.Addr().String(), Weight: 1}
}

func TestTrafficContainersAndWaitServing(t *testing.T) {
	a, b := newChecked(t, "a", true), newChecked(t, "b", false)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(withCheck(service("app",
		containerEndpoint("c1", a.Server),
		containerEndpoint("c2", b.Server)), 1, 1)))
	if got := h.p.Containers("app"); len(got) != 2 || got[0] != "c1" || got[1] != "c2" {
		t.Fatalf("Containers = %v, want [c1 c2]", got)
	}
	runChecks(t, h.p)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.p.WaitServing(ctx, "app", "c1"); err != nil {
		t.Fatalf("WaitServing c1: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := h.p.WaitServing(short, "app", "c2"); err == nil {
		t.Fatal("WaitServing c2 returned although its check fails")
	}
	b.healthy.Store(true)
	if err := h.p.WaitServing(ctx, "app", "c2"); err != nil {
		t.Fatalf("WaitServing c2 after it became healthy: %v", err)
	}
}

// Drain takes a container out at once and returns when its in-flight
// request finished.
func TestTrafficDrain(t *testing.T) {
	g, slow := gatedBackend(t, "slow")
	fast := namedBackend(t, "fast")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		containerEndpoint("old", slow),
		containerEndpoint("new", fast))))
	// Round robin: send until one request waits in the slow backend.
	done := make(chan string, 4)
	for range 2 {
		go func() {
			_, body := h.get("/")
			done <- body
		}()
	}
	g.waitArrived(t)
	drained := make(chan int, 1)
	go func() { drained <- h.p.Drain(context.Background(), "app", "old") }()
	// Once the drain has begun (Drain runs on its own goroutine: a request
	// sent before it starts may still be picked for old), new requests go
	// to the other backend while the drain waits.
	old := h.p.Backend("app", "old:8080")
	waitFor(t, func() bool { return old.State() == "draining" }, "the drain did not take old out of rotation")
	for range 5 {
		if _, body := h.get("/"); body != "fast" {
			t.Fatalf("got %q during the drain, want fast", body)
		}
	}
	select {
	case n := <-drained:
		t.Fatalf("Drain returned %d before the in-flight request finished", n)
	default:
	}
	g.open()
	if n := <-drained; n != 0 {
		t.Errorf("Drain returned %d in flight, want 0", n)
	}
	if st := h.p.Backend("app", "old:8080").State(); st != "draining" {
		t.Errorf("drained backend is %s, want draining", st)
	}
	if got := h.p.Containers("app"); len(got) != 1 || got[0] != "new" {
		t.Errorf("Containers after the drain = %v, want [new]", got)
	}
	// Both first requests end before the test does: Drain returns once the
	// proxy finished the slow one, which its client may still be reading
	// (it failed the test after its end when the harness closed first).
	for range 2 {
		if body := <-done; body != "slow" && body != "fast" {
			t.Errorf("a first request got %q", body)
		}
	}
}

// A held service's requests wait for a backend instead of failing; when
// the hold ends without one they fail as usual.
func TestTrafficHold(t *testing.T) {
	next := namedBackend(t, "next")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app")))
	release := h.p.Hold("app", 10*time.Second)
	type result struct {
		code int
		body string
	}
	got := make(chan result, 1)
	go func() {
		res, body := h.get("/")
		got <- result{res.StatusCode, body}
	}()
	select {
	case r := <-got:
		t.Fatalf("a held request was answered at once: %d %q", r.code, r.body)
	case <-time.After(100 * time.Millisecond):
	}
	h.p.Update(snapshot(service("app", containerEndpoint("new", next))))
	if r := <-got; r.code != 200 || r.body != "next" {
		t.Fatalf("held request: %d %q, want the new backend's answer", r.code, r.body)
	}
	release()
	h.p.Update(snapshot(service("app")))
	if res, _ := h.get("/"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after the hold: %d, want 503", res.StatusCode)
	}
	// A hold gives up after its maximum.
	release = h.p.Hold("app", 50*time.Millisecond)
	defer release()
	start := time.Now()
	if res, _ := h.get("/"); res.StatusCode != http.StatusServiceUnavailable || time.Since(start) < 50*time.Millisecond {
		t.Errorf("held past its maximum: %d after %s, want 503 after 50ms", res.StatusCode, time.Since(start))
	}
}
