package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cutoverproxy/cutover/discovery"
)

// statusBackend answers with the status code in the query's "code", 200
// by default.
func statusBackend(t *testing.T) discovery.Endpoint {
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if c, err := strconv.Atoi(r.URL.Query().Get("code")); err == nil {
			code = c
		}
		w.WriteHeader(code)
	}))
	return endpoint("unused", srv)
}

func hostService(name, host string, eps ...discovery.Endpoint) discovery.Service {
	s := service(name, eps...)
	s.Routes = []discovery.Route{{Host: host, Path: "/"}}
	return s
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, Config{})
	a := statusBackend(t)
	a.ID, a.Name = "a", "a-name"
	d := a
	d.ID, d.Name, d.State = "d", "d-name", discovery.Draining
	g, slow := gatedBackend(t, "slow")
	snap := snapshot(
		hostService("app", "app.test", a, d),
		hostService("other", "other.test", endpoint("o", namedBackend(t, "o"))),
		hostService("slow", "slow.test", endpoint("s", slow)),
	)
	h.p.Update(snap)

	for _, c := range []struct {
		method, host, path string
		n                  int
	}{
		{"GET", "app.test", "/", 3},
		{"POST", "app.test", "/", 2},
		{"GET", "app.test", "/?code=404", 1},
		{"PURGE", "app.test", "/?code=299", 1},
		{"GET", "other.test", "/", 1},
		{"GET", "unknown.test", "/", 2},
		{"HEAD", "unknown.test", "/", 1},
	} {
		for range c.n {
			h.do(h.request(c.method, c.host, c.path, nil))
		}
	}
	h.waitServed(11)
	req := h.request("GET", "slow.test", "/", nil)
	pending := make(chan struct{})
	go func() {
		defer close(pending)
		res, err := h.client.Do(req)
		if err == nil {
			res.Body.Close()
		}
	}()
	g.waitArrived(t)

	const want = `
# HELP cutover_requests_total Requests answered, by service, status code and method. Requests that match no route have service="".
# TYPE cutover_requests_total counter
cutover_requests_total{code="200",method="GET",service="app"} 3
cutover_requests_total{code="200",method="POST",service="app"} 2
cutover_requests_total{code="404",method="GET",service="app"} 1
cutover_requests_total{code="299",method="OTHER",service="app"} 1
cutover_requests_total{code="200",method="GET",service="other"} 1
cutover_requests_total{code="404",method="GET",service=""} 2
cutover_requests_total{code="404",method="HEAD",service=""} 1
# HELP cutover_retries_total Attempts made on another backend after a failed one, by why: connect (the request never reached the backend), timeout, error (connection failed before a response).
# TYPE cutover_retries_total counter
cutover_retries_total{reason="connect",service="app"} 0
cutover_retries_total{reason="error",service="app"} 0
cutover_retries_total{reason="timeout",service="app"} 0
cutover_retries_total{reason="connect",service="other"} 0
cutover_retries_total{reason="error",service="other"} 0
cutover_retries_total{reason="timeout",service="other"} 0
cutover_retries_total{reason="connect",service="slow"} 0
cutover_retries_total{reason="error",service="slow"} 0
cutover_retries_total{reason="timeout",service="slow"} 0
# HELP cutover_backend_up 1 when the backend may receive requests, else 0.
# TYPE cutover_backend_up gauge
cutover_backend_up{backend="a-name",service="app"} 1
cutover_backend_up{backend="d-name",service="app"} 0
cutover_backend_up{backend="o",service="other"} 1
cutover_backend_up{backend="s",service="slow"} 1
# HELP cutover_backend_inflight Requests the backend is serving now.
# TYPE cutover_backend_inflight gauge
cutover_backend_inflight{backend="a-name",service="app"} 0
cutover_backend_inflight{backend="d-name",service="app"} 0
cutover_backend_inflight{backend="o",service="other"} 0
cutover_backend_inflight{backend="s",service="slow"} 1
`
	gatherAndCompare(t, h.reg, want,
		"cutover_requests_total", "cutover_retries_total", "cutover_backend_up", "cutover_backend_inflight")
	if n := histogramCount(t, h.reg, "app"); n != 7 {
		t.Errorf("request_duration_seconds_count{service=app} = %d, want 7", n)
	}
	g.open()
	recv(t, pending)
	h.waitServed(1)
	if n := h.metric("cutover_backend_inflight", "service", "slow", "backend", "s"); n != 0 {
		t.Errorf("in flight after the request = %v, want 0", n)
	}

	// Removing a service and a backend removes their series.
	h.p.Update(snapshot(hostService("app", "app.test", a)))
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && (l.GetValue() == "other" || l.GetValue() == "slow") ||
					l.GetName() == "backend" && l.GetValue() == "d-name" {
					t.Errorf("series of a removed service or backend: %s %v", f.GetName(), m.GetLabel())
				}
			}
		}
	}
	if n := h.metric("cutover_requests_total", "service", "app", "code", "200", "method", "GET"); n != 3 {
		t.Errorf("requests of a kept service = %v after the update, want 3", n)
	}
	if n := h.metric("cutover_requests_total", "service", "", "code", "404", "method", "GET"); n != 2 {
		t.Errorf("unrouted requests = %v after the update, want 2", n)
	}
}

// gatherAndCompare compares the named families that g gathers with want,
// in the text exposition format, line order aside. (It does what
// prometheus/testutil.GatherAndCompare does; testutil needs a module that
// go.mod does not require.)
func gatherAndCompare(t *testing.T, g prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	wantFamilies, err := p.TextToMetricFamilies(strings.NewReader(want))
	if err != nil {
		t.Fatalf("parse expected metrics: %v", err)
	}
	got, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gotFamilies := map[string]*dto.MetricFamily{}
	for _, f := range got {
		gotFamilies[f.GetName()] = f
	}
	for _, name := range names {
		w, g := familyText(t, wantFamilies[name]), familyText(t, gotFamilies[name])
		if w != g {
			t.Errorf("metric %s:\ngot:\n%s\nwant:\n%s", name, g, w)
		}
	}
}

// familyText renders f with its lines sorted.
func familyText(t *testing.T, f *dto.MetricFamily) string {
	if f == nil {
		return "(none)"
	}
	var b strings.Builder
	if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func histogramCount(t *testing.T, g prometheus.Gatherer, service string) uint64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "cutover_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestMetricsRetries(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app",
		addrEndpoint("a", refusedAddr(t)),
		addrEndpoint("b", refusedAddr(t)))))
	for range 3 {
		h.get("/")
	}
	if n := h.metric("cutover_retries_total", "service", "app", "reason", "connect"); n != 3 {
		t.Errorf("retries_total{reason=connect} = %v, want 3", n)
	}
	if n := h.metric("cutover_requests_total", "service", "app", "code", "503", "method", "GET"); n != 3 {
		t.Errorf("requests_total{code=503} = %v, want 3", n)
	}
}

func TestMetricsSecondProxyOnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registerer: reg}); err == nil {
		t.Error("second proxy registered the same metrics without error")
	}
}
