package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// served is the response of a request served in the background.
type served struct {
	code int
	body string
}

// serveAsync serves req to h in a goroutine; the channel receives the
// response once the handler has returned.
func serveAsync(h http.Handler, req *http.Request) <-chan served {
	done := make(chan served, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- served{rec.Code, rec.Body.String()}
	}()
	return done
}

// waitHeld waits until n requests are held by the app's hang gate.
func waitHeld(t *testing.T, a *app, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.hang.held.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests held, want %d", a.hang.held.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestControlHangHoldsUntilSwitchedOff(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	if rec := do(a, http.MethodPost, "/control/hang?v=true"); rec.Code != http.StatusOK || rec.Body.String() != "hang=true\n" {
		t.Fatalf("POST /control/hang?v=true = %d %q", rec.Code, rec.Body)
	}
	echo := serveAsync(a, httptest.NewRequest(http.MethodGet, "/x?status=201", nil))
	health := serveAsync(a, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	waitHeld(t, a, 2)

	// Control and stats still answer, and the held echo request is counted.
	if rec := do(a, http.MethodGet, "/control/fail?v=false"); rec.Code != http.StatusOK {
		t.Errorf("GET /control/fail while hanging = %d", rec.Code)
	}
	if rec := do(a, http.MethodGet, "/stats"); rec.Code != http.StatusOK || a.requests.Load() != 1 {
		t.Errorf("GET /stats while hanging = %d, %d requests counted, want 200 and 1", rec.Code, a.requests.Load())
	}
	select {
	case r := <-echo:
		t.Fatalf("echo answered while hanging: %+v", r)
	case r := <-health:
		t.Fatalf("/healthz answered while hanging: %+v", r)
	default:
	}

	if rec := do(a, http.MethodGet, "/control/hang?v=false"); rec.Code != http.StatusOK {
		t.Fatalf("GET /control/hang?v=false = %d", rec.Code)
	}
	if r := <-echo; r.code != 201 || r.body != "a v1 GET /x\n" {
		t.Errorf("released echo = %+v, want 201 \"a v1 GET /x\\n\"", r)
	}
	if r := <-health; r.code != http.StatusOK || r.body != "ok" {
		t.Errorf("released /healthz = %+v, want 200 ok", r)
	}
	// Off, nothing waits.
	if rec := do(a, http.MethodGet, "/y"); rec.Code != http.StatusOK {
		t.Errorf("GET /y after hang = %d", rec.Code)
	}
}

func TestControlHangEndsWhenClientGoesAway(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	do(a, http.MethodPost, "/control/hang?v=true")
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/x", nil)
	done := serveAsync(a, req)
	waitHeld(t, a, 1)
	cancel()
	select {
	case r := <-done:
		// Nothing was written: the recorder keeps its default 200 and an
		// empty body.
		if r.body != "" {
			t.Errorf("a request whose client left got a body: %q", r.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler still holds a request whose client left")
	}
	waitHeld(t, a, 0)
}

func TestGateSetTwice(t *testing.T) {
	var g gate
	g.set(false) // off when off: nothing to close
	g.set(true)
	first := g.release
	g.set(true) // on when on: the same release channel
	if g.release != first {
		t.Error("switching an on gate on again replaced its release channel")
	}
	g.set(false)
	g.set(false)
	if !g.wait(context.Background()) {
		t.Error("an off gate held a request")
	}
}

func TestFlapHealth(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		name  string
		cfg   config
		calls []int // successive /healthz status codes
	}{
		{"flapping from the start", config{healthy: true, flapHealth: true}, []int{200, 503, 200, 503, 200}},
		{"unhealthy does not flap", config{healthy: false, flapHealth: true}, []int{503, 503, 503}},
		{"not ready does not flap", config{healthy: true, flapHealth: true, readyAfter: time.Hour}, []int{503, 503, 503}},
		{"off", config{healthy: true}, []int{200, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			a := testApp(t, tt.cfg, &now)
			for i, want := range tt.calls {
				if rec := do(a, http.MethodGet, "/healthz"); rec.Code != want {
					t.Errorf("call %d: GET /healthz = %d %q, want %d", i+1, rec.Code, rec.Body, want)
				}
			}
		})
	}
}

func TestControlFlap(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	steps := []struct {
		target string // a control request, or "" for none
		want   int    // the /healthz that follows
	}{
		{"", 200},
		{"/control/flap?v=true", 200},
		{"", 503},
		{"", 200},
		{"/control/flap?v=true", 503}, // already on: the alternation goes on
		{"/control/flap?v=false", 200},
		{"", 200},
		{"/control/flap?v=true", 200}, // on again: starts with a pass
		{"", 503},
	}
	for i, s := range steps {
		if s.target != "" {
			if rec := do(a, http.MethodPost, s.target); rec.Code != http.StatusOK {
				t.Fatalf("step %d: POST %s = %d", i, s.target, rec.Code)
			}
		}
		if rec := do(a, http.MethodGet, "/healthz"); rec.Code != s.want {
			t.Errorf("step %d (%s): GET /healthz = %d, want %d", i, s.target, rec.Code, s.want)
		}
	}
	if a.requests.Load() != 0 {
		t.Errorf("/healthz and /control/* counted as %d echo requests, want 0", a.requests.Load())
	}
}
