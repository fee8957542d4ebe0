package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultStreamInterval is the pause between the chunks of ?stream=N.
const DefaultStreamInterval = 10 * time.Millisecond

// app is the test backend's handler. Its state is atomic: it is safe for
// concurrent use, and the control endpoints change it while requests run.
type app struct {
	name, version  string
	readyAt        time.Time        // /healthz fails before this instant
	now            func() time.Time // the clock; time.Now outside tests
	streamInterval time.Duration    // pause between ?stream chunks
	healthy        atomic.Bool      // flipped by /control/healthy
	failing        atomic.Bool      // flipped by /control/fail
	flapping       atomic.Bool      // flipped by /control/flap
	flapCalls      atomic.Int64     // calls of /healthz that flapped since flapping began
	hang           gate             // switched by /control/hang
	requests       atomic.Int64     // echo requests served
	data           store            // /data, under -data-dir
}

func newApp(cfg config, now func() time.Time) *app {
	a := &app{
		name:           cfg.name,
		version:        cfg.version,
		readyAt:        now().Add(cfg.readyAfter),
		now:            now,
		streamInterval: DefaultStreamInterval,
		data:           store{dir: cfg.dataDir},
	}
	a.healthy.Store(cfg.healthy)
	a.flapping.Store(cfg.flapHealth)
	return a
}

// ServeHTTP dispatches on the exact path. It does not use http.ServeMux,
// whose path cleaning and redirects would hide what the proxy forwarded.
// While hang mode is on, /healthz, /ws and echo requests hang; /control/*,
// /stats and /data answer, so that a test can still read and end it.
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		if a.hang.wait(r.Context()) {
			a.serveHealth(w, r)
		}
	case "/control/healthy":
		a.serveToggle(w, r, a.healthy.Store, "healthy")
	case "/control/fail":
		a.serveToggle(w, r, a.failing.Store, "fail")
	case "/control/hang":
		a.serveToggle(w, r, a.hang.set, "hang")
	case "/control/flap":
		a.serveToggle(w, r, a.setFlapping, "flap")
	case "/stats":
		a.serveStats(w, r)
	case "/data":
		a.serveData(w, r)
	case "/ws":
		if a.hang.wait(r.Context()) {
			a.serveWebSocket(w, r)
		}
	default:
		a.serveEcho(w, r)
	}
}

func (a *app) setIdentity(h http.Header) {
	h.Set("X-Backend", a.name)
	h.Set("X-Version", a.version)
}

func (a *app) serveHealth(w http.ResponseWriter, _ *http.Request) {
	a.setIdentity(w.Header())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case !a.healthy.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "unhealthy")
	case a.now().Before(a.readyAt):
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "starting")
	case a.flapping.Load() && a.flapCalls.Add(1)%2 == 0:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "flapping")
	default:
		fmt.Fprint(w, "ok")
	}
}

// setFlapping turns flapping health on or off. Turned on, the next
// /healthz passes, the one after fails, and so on.
func (a *app) setFlapping(on bool) {
	if on && !a.flapping.Load() {
		a.flapCalls.Store(0)
	}
	a.flapping.Store(on)
}

// serveToggle calls set with ?v=true|false, by GET or POST.
func (a *app) serveToggle(w http.ResponseWriter, r *http.Request, set func(bool), what string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	v, err := strconv.ParseBool(r.URL.Query().Get("v"))
	if err != nil {
		http.Error(w, fmt.Sprintf("query v=%q: want v=true or v=false", r.URL.Query().Get("v")), http.StatusBadRequest)
		return
	}
	set(v)
	a.setIdentity(w.Header())
	fmt.Fprintf(w, "%s=%t\n", what, v)
}

// stats is the body of /stats.
type stats struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Requests int64  `json:"requests"`
}

func (a *app) serveStats(w http.ResponseWriter, _ *http.Request) {
	a.setIdentity(w.Header())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(stats{Name: a.name, Version: a.version, Requests: a.requests.Load()})
}
