package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/cutoverproxy/cutover/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of a test.
const testTimeout = 10 * time.Second

// syncBuffer collects log lines written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a Proxy behind an httptest server, with its own metrics
// registry, a log buffer and a keep-alive client.
type harness struct {
	t      testing.TB
	p      *Proxy
	front  *httptest.Server
	reg    *prometheus.Registry
	logs   *syncBuffer
	client *http.Client
	// served receives a value each time ServeHTTP returns (dropped when
	// nobody has read the last 1024).
	served chan struct{}
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, reg: prometheus.NewRegistry(), logs: &syncBuffer{}, served: make(chan struct{}, 1024)}
	cfg.Registerer = h.reg
	cfg.Logger = zerolog.New(h.logs)
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case h.served <- struct{}{}:
			default:
			}
		}()
		p.ServeHTTP(w, r)
	}))
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	h.client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		h.front.Close()
		// An empty table removes every backend and closes its idle
		// connections.
		p.Update(discovery.Snapshot{})
	})
	return h
}

// waitServed waits until ServeHTTP has returned n more times.
func (h *harness) waitServed(n int) {
	h.t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for range n {
		select {
		case <-h.served:
		case <-timer.C:
			h.t.Fatal("timeout waiting for the proxy to finish a request")
		}
	}
}

// request makes a request to the proxy for host and path.
func (h *harness) request(method, host, path string, body io.Reader) *http.Request {
	h.t.Helper()
	req, err := http.NewRequest(method, h.front.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	return req
}

// do sends req and reads the whole response body.
func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), testTimeout)
	defer cancel()
	res, err := h.client.Do(req.WithContext(ctx))
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

// get sends a GET for path to the catch-all host "app.test".
func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	return h.do(h.request("GET", "app.test", path, nil))
}

// retries returns the retry counter of the named service.
func (h *harness) retries(service string) uint64 {
	svc := h.p.Table().Service(service)
	if svc == nil {
		h.t.Fatalf("no service %q", service)
	}
	var n uint64
	for i := range svc.stats.retries {
		n += svc.stats.retries[i].Load()
	}
	return n
}

// noWarnings fails the test when anything was logged at warn or above.
func (h *harness) noWarnings() {
	h.t.Helper()
	for line := range strings.SplitSeq(h.logs.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			h.t.Errorf("unexpected log line: %s", line)
		}
	}
}

// startBackend starts an httptest server on 127.0.0.1, closed when the
// test ends.
func startBackend(t testing.TB, handler http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// namedBackend answers every request with its name in the body.
func namedBackend(t testing.TB, name string) *httptest.Server {
	return startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		_, _ = io.WriteString(w, name)
	}))
}

// gate blocks the handlers of a gated backend until the test opens it.
type gate struct {
	arrived chan string // receives the path of each request that arrived
	release chan struct{}
	once    sync.Once
}

// gatedBackend starts a backend that reads each request, reports its path
// on arrived and, once the gate is open or the request has ended, answers
// with name. The gate opens when the test ends, before the server closes.
func gatedBackend(t testing.TB, name string) (*gate, *httptest.Server) {
	g := &gate{arrived: make(chan string, 64), release: make(chan struct{})}
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice a closed connection.
		_, _ = io.Copy(io.Discard, r.Body)
		g.arrived <- r.URL.Path
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(g.open)
	return g, srv
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// waitArrived waits for a request to reach a gated handler.
func (g *gate) waitArrived(t testing.TB) string {
	t.Helper()
	select {
	case p := <-g.arrived:
		return p
	case <-time.After(testTimeout):
		t.Fatal("timeout waiting for a request to reach the backend")
		return ""
	}
}

// refusedAddr returns an address on 127.0.0.1 where nothing listens.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangUpBackend reads a request and closes the connection without
// answering. It counts the requests it got.
func hangUpBackend(t testing.TB, hits *atomic.Int64) *httptest.Server {
	return startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
}

// endpoint is a ready endpoint of weight 1 named id at srv's address.
func endpoint(id string, srv *httptest.Server) discovery.Endpoint {
	return addrEndpoint(id, srv.Listener.Addr().String())
}

func addrEndpoint(id, addr string) discovery.Endpoint {
	return discovery.Endpoint{ID: id, Name: id, Address: addr, Weight: 1}
}

// service is a round-robin service with the catch-all route.
func service(name string, eps ...discovery.Endpoint) discovery.Service {
	return discovery.Service{
		Name:      name,
		Routes:    []discovery.Route{{Path: "/"}},
		Endpoints: eps,
	}
}

func snapshot(services ...discovery.Service) discovery.Snapshot {
	return discovery.Snapshot{Services: services}
}

// recv receives from ch within testTimeout.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatal("timeout")
		var zero T
		return zero
	}
}

// metric returns the value of the counter or gauge called name with the
// given label pairs, or -1 when there is no such series.
func (h *harness) metric(name string, labels ...string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	if len(m.GetLabel())*2 != len(pairs) {
		return false
	}
	for i := 0; i < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
