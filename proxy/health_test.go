package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// checked is a backend whose /healthz the test switches, and which counts
// the other requests it serves.
type checked struct {
	*httptest.Server
	healthy atomic.Bool
	status  atomic.Int32 // status of ordinary requests; 0 means 200
	served  atomic.Int64
	probes  atomic.Int64
}

func newChecked(t testing.TB, name string, healthy bool) *checked {
	c := &checked{}
	c.healthy.Store(healthy)
	c.Server = startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			c.probes.Add(1)
			if !c.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		c.served.Add(1)
		if code := c.status.Load(); code != 0 {
			w.WriteHeader(int(code))
		}
		_, _ = io.WriteString(w, name)
	}))
	return c
}

// withCheck gives a service an active check at a short interval.
func withCheck(svc discovery.Service, rise, fall int) discovery.Service {
	svc.Options.Health = discovery.Health{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: rise, Fall: fall}
	return svc
}

// runChecks runs the proxy's health checks until the test ends.
func runChecks(t *testing.T, p *Proxy) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func waitState(t *testing.T, p *Proxy, service, id, want string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		b := p.Backend(service, id)
		if b != nil && b.State() == want {
			return
		}
		if time.Now().After(deadline) {
			got := "gone"
			if b != nil {
				got = b.State() + ": " + b.Why()
			}
			t.Fatalf("backend %s/%s is %s, want %s", service, id, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A backend of a service with a check gets no request until its probes
// pass, goes down after fall failures and comes back after rise passes.
func TestHealthGatesTraffic(t *testing.T) {
	a, b := newChecked(t, "a", true), newChecked(t, "b", false)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(withCheck(service("app", endpoint("a", a.Server), endpoint("b", b.Server)), 2, 2)))
	if st := h.p.Backend("app", "a").State(); st != "down" {
		t.Fatalf("a new backend with a check is %s before any probe, want down", st)
	}
	runChecks(t, h.p)
	waitState(t, h.p, "app", "a", "up")
	for range 20 {
		if res, body := h.get("/"); res.StatusCode != 200 || body != "a" {
			t.Fatalf("got %d %q, want a: b has not passed", res.StatusCode, body)
		}
	}
	if b.served.Load() != 0 {
		t.Fatalf("b served %d requests before its first pass", b.served.Load())
	}
	if why := h.p.Backend("app", "b").Why(); !strings.Contains(why, "status 503") {
		t.Errorf("why b is out: %q, want the probe's error", why)
	}
	b.healthy.Store(true)
	waitState(t, h.p, "app", "b", "up")
	a.healthy.Store(false)
	waitState(t, h.p, "app", "a", "down")
	served := a.served.Load()
	for range 10 {
		if _, body := h.get("/"); body != "b" {
			t.Fatalf("got %q while a is down, want b", body)
		}
	}
	if a.served.Load() != served {
		t.Errorf("a served requests while down")
	}
	if !strings.Contains(h.logs.String(), "backend down: 2 consecutive probe failures: status 503") {
		t.Errorf("no 'backend down' log line:\n%s", h.logs.String())
	}
	if n := h.metric("cutover_health_checks_total", "service", "app", "result", "fail"); n < 2 {
		t.Errorf("cutover_health_checks_total{result=fail} = %v, want ≥ 2", n)
	}
}

// The first pass admits a backend when its service has nothing else.
func TestHealthFirstPassAdmitsWhenNothingIsAvailable(t *testing.T) {
	a := newChecked(t, "a", true)
	h := newHarness(t, Config{})
	svc := withCheck(service("app", endpoint("a", a.Server)), 5, 2)
	svc.Options.Health.Interval = time.Hour // only the immediate first probe
	h.p.Update(snapshot(svc))
	runChecks(t, h.p)
	waitState(t, h.p, "app", "a", "up")
	if n := a.probes.Load(); n != 1 {
		t.Errorf("%d probes, want 1: the first pass is enough", n)
	}
}

// Health state lives on the backend: an update that changes another
// service does not reset a down backend to up.
func TestHealthSurvivesUnrelatedUpdates(t *testing.T) {
	a, b := newChecked(t, "a", true), newChecked(t, "b", false)
	other := namedBackend(t, "o")
	h := newHarness(t, Config{})
	app := withCheck(service("app", endpoint("a", a.Server), endpoint("b", b.Server)), 2, 2)
	h.p.Update(snapshot(app))
	runChecks(t, h.p)
	waitState(t, h.p, "app", "a", "up")
	before := h.p.Backend("app", "b")
	for i := range 20 {
		h.p.Update(snapshot(app, hostService("other", fmt.Sprintf("o%d.test", i), endpoint("o", other))))
		if st := h.p.Backend("app", "b").State(); st != "down" {
			t.Fatalf("after update %d b is %s, want still down", i, st)
		}
	}
	if h.p.Backend("app", "b") != before {
		t.Error("an unrelated update replaced the backend")
	}
}

// Consecutive 5xx eject a backend while others are available; the last
// available backend is never ejected.
func TestPassiveEjection(t *testing.T) {
	bad, good := newChecked(t, "bad", true), newChecked(t, "good", true)
	bad.status.Store(500)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("bad", bad.Server), endpoint("good", good.Server))))
	for range 20 {
		h.get("/")
	}
	if st := h.p.Backend("app", "bad").State(); st != "ejected" {
		t.Fatalf("bad is %s after 500s, want ejected", st)
	}
	if n := bad.served.Load(); n != 5 {
		t.Errorf("bad served %d requests, want 5 (the threshold)", n)
	}
	if n := h.metric("cutover_backend_ejections_total", "service", "app"); n != 1 {
		t.Errorf("ejections = %v, want 1", n)
	}

	// Alone, a failing backend keeps serving its 500s.
	lone := newChecked(t, "lone", true)
	lone.status.Store(500)
	h.p.Update(snapshot(service("solo", endpoint("lone", lone.Server))))
	for range 20 {
		h.get("/")
	}
	if st := h.p.Backend("solo", "lone").State(); st != "up" {
		t.Errorf("the only backend is %s after 20 500s, want up: the last one is never ejected", st)
	}
}

// A passing probe ends an ejection for connection failures early; an
// ejection for 5xx answers runs its course, since a passing probe does not
// show that live requests would pass.
func TestProbeEndsEjection(t *testing.T) {
	addr := refusedAddr(t)
	good := newChecked(t, "good", true)
	h := newHarness(t, Config{})
	svc := withCheck(service("app", addrEndpoint("bad", addr), endpoint("good", good.Server)), 1, 100)
	h.p.Update(snapshot(svc))
	h.p.Backend("app", "bad").check.SetUp() // as if it had passed before
	h.p.Backend("app", "bad").setBits(outDown, 0)
	runChecks(t, h.p)
	waitState(t, h.p, "app", "good", "up")
	for range 20 {
		h.get("/")
	}
	waitState(t, h.p, "app", "bad", "ejected")
	backListening(t, h, addr, "bad", "health check passed")

	// 5xx answers with a passing probe: the ejection stays.
	bad5 := newChecked(t, "bad5", true)
	bad5.status.Store(500)
	h.p.Update(snapshot(withCheck(service("five", endpoint("bad5", bad5.Server), endpoint("good", good.Server)), 1, 3)))
	waitState(t, h.p, "five", "bad5", "up")
	waitState(t, h.p, "five", "good", "up")
	for range 20 {
		h.do(h.request("GET", "five.test", "/", nil))
		if h.p.Backend("five", "bad5").State() == "ejected" {
			break
		}
	}
	probes := bad5.probes.Load()
	deadline := time.Now().Add(testTimeout)
	for bad5.probes.Load() < probes+3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := h.p.Backend("five", "bad5").State(); st != "ejected" {
		t.Errorf("after 3 passing probes a backend ejected for 500s is %s, want still ejected", st)
	}
}

// A backend that refuses connections (its program does not listen yet)
// is ejected for refusedEjection, not the base ejection's 30 s: once it
// listens, it is back within about a second, without any active check.
func TestRefusedConnectionsEjectBriefly(t *testing.T) {
	addr := refusedAddr(t)
	good := newChecked(t, "good", true)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("late", addr), endpoint("good", good.Server))))
	for range 20 {
		if res, _ := h.get("/"); res.StatusCode != 200 {
			t.Fatalf("GET while late refuses: %s, want 200 from good", res.Status)
		}
	}
	waitState(t, h.p, "app", "late", "ejected")
	if !strings.Contains(h.logs.String(), `"for":1000`) {
		t.Errorf("the ejection's log does not say 1 s:\n%s", h.logs.String())
	}
	backListening(t, h, addr, "late", "ejection time over")
}

// backListening serves HTTP on addr, where backend id of service "app" was
// refused, and waits until it is up again, its ejection's end logged with
// why.
func backListening(t *testing.T, h *harness, addr, id, why string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	waitState(t, h.p, "app", id, "up")
	// The line is written just after the state changes.
	waitFor(t, func() bool { return strings.Contains(h.logs.String(), "backend back from ejection: "+why) },
		"no log of the ejection's end")
}

// A backend that does not answer in time is ejected at once: a hung
// backend costs at most one timeout per request in flight on it.
func TestTimeoutEjectsAtOnce(t *testing.T) {
	g, hung := gatedBackend(t, "hung")
	fast := namedBackend(t, "fast")
	h := newHarness(t, Config{ResponseHeaderTimeout: 100 * time.Millisecond})
	h.p.Update(snapshot(service("app", endpoint("hung", hung), endpoint("fast", fast))))
	for i := range 10 {
		res, body := h.get("/")
		if res.StatusCode != 200 || body != "fast" {
			t.Fatalf("request %d: %d %q, want fast", i, res.StatusCode, body)
		}
	}
	if len(g.arrived) != 1 {
		t.Errorf("%d requests reached the hung backend, want 1", len(g.arrived))
	}
	if n := h.metric("cutover_retries_total", "service", "app", "reason", "timeout"); n != 1 {
		t.Errorf("timeout retries = %v, want 1", n)
	}
}

// A request body of known length up to MaxReplayBody is sent again on a
// retry; a POST is retried only when it never reached a backend.
func TestBodyReplay(t *testing.T) {
	hangup := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	got := make(chan string, 8)
	echo := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + string(b)
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("hangup", hangup), endpoint("echo", echo))))
	body := strings.Repeat("x", 10_000)
	sent := 0
	for range 4 {
		res, _ := h.do(h.request("PUT", "app.test", "/", strings.NewReader(body)))
		if res.StatusCode != 200 {
			t.Fatalf("PUT: %d, want 200 (retried with its body)", res.StatusCode)
		}
		sent++
	}
	for range sent {
		if g := <-got; g != "PUT "+body {
			t.Fatalf("echo got %d bytes %.20q, want the whole PUT body", len(g), g)
		}
	}
	// A POST that reached the backend that hung up is not sent again.
	fails := 0
	for range 4 {
		res, _ := h.do(h.request("POST", "app.test", "/", bytes.NewReader([]byte(body))))
		if res.StatusCode == http.StatusBadGateway {
			fails++
		} else {
			<-got
		}
	}
	if fails == 0 {
		t.Error("no POST failed: a POST that reached a backend must not be retried")
	}
}

func TestRetryBudget(t *testing.T) {
	var rb retryBudget
	now := time.Unix(1000, 0)
	for range 100 {
		rb.request(now)
	}
	allowed := 0
	for range 100 {
		if rb.allow(now) {
			allowed++
		}
	}
	if want := budgetMin + 100*budgetPercent/100; allowed != want {
		t.Errorf("%d retries allowed after 100 requests, want %d", allowed, want)
	}
	later := now.Add(budgetWindow * time.Second)
	if !rb.allow(later) {
		t.Error("the window did not move on")
	}
}

func TestSlowStartRamp(t *testing.T) {
	b := &Backend{}
	start := time.Unix(1000, 0)
	b.upSince.Store(start.UnixNano())
	if r := b.ramp(start.Add(time.Second)); r != 1000 {
		t.Errorf("ramp without slow start = %d, want 1000", r)
	}
	b.slowStart.Store(int64(10 * time.Second))
	for _, c := range []struct {
		after time.Duration
		want  int64
	}{{0, 1}, {time.Second, 100}, {5 * time.Second, 500}, {10 * time.Second, 1000}, {time.Minute, 1000}} {
		if r := b.ramp(start.Add(c.after)); r != c.want {
			t.Errorf("ramp after %s = %d, want %d", c.after, r, c.want)
		}
	}
}

// A backend in slow start gets a share of requests that grows with time.
func TestSlowStartThroughTheProxy(t *testing.T) {
	old, fresh := newChecked(t, "old", true), newChecked(t, "fresh", true)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("old", old.Server))))
	svc := service("app", endpoint("old", old.Server), endpoint("fresh", fresh.Server))
	svc.Options.Health.SlowStart = time.Hour
	h.p.Update(snapshot(svc))
	// old has been up for an hour already; fresh has just come.
	h.p.Backend("app", "old").upSince.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	for range 200 {
		h.get("/")
	}
	if n := fresh.served.Load(); n > 5 {
		t.Errorf("the backend in slow start served %d of 200 requests, want almost none in its first second of an hour", n)
	}
	if old.served.Load()+fresh.served.Load() != 200 {
		t.Errorf("served %d + %d, want 200", old.served.Load(), fresh.served.Load())
	}
}

// Requests that time out together on a hung backend eject it once: one
// fault is one ejection, and its doubling does not run away.
func TestConcurrentTimeoutsEjectOnce(t *testing.T) {
	g, hung := gatedBackend(t, "hung")
	fast := namedBackend(t, "fast")
	h := newHarness(t, Config{ResponseHeaderTimeout: 200 * time.Millisecond})
	h.p.Update(snapshot(service("app", endpoint("hung", hung), endpoint("fast", fast))))
	h.p.Backend("app", "fast").setBits(outDeployDrain, outDeployDrain) // everything goes to hung first
	done := make(chan int, 4)
	for range 4 {
		go func() {
			res, _ := h.get("/")
			done <- res.StatusCode
		}()
	}
	for range 4 {
		g.waitArrived(t)
	}
	h.p.Backend("app", "fast").setBits(outDeployDrain, 0)
	for range 4 {
		if code := <-done; code != 200 {
			t.Errorf("status %d, want 200 from the retry", code)
		}
	}
	if n := h.metric("cutover_backend_ejections_total", "service", "app"); n != 1 {
		t.Errorf("ejections = %v, want 1", n)
	}
}
