package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// wait bounds every wait of these tests: long enough for a slow machine,
// short compared with the hour-long intervals that show a probe did not
// wait for its interval.
const wait = 10 * time.Second

// event is one call of Observer.Probed.
type event struct {
	r           Result
	up, changed bool
}

// recorder is an Observer that hands each result to the test.
type recorder struct {
	ch   chan event
	stop <-chan struct{}
}

func (rc *recorder) Probed(r Result, up, changed bool) {
	select {
	case rc.ch <- event{r, up, changed}:
	case <-rc.stop:
	}
}

func (rc *recorder) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-rc.ch:
		return e
	case <-time.After(wait):
		t.Fatal("no probe result")
		return event{}
	}
}

// harness runs a Monitor for one test and stops it at the end.
type harness struct {
	m      *Monitor
	cancel context.CancelFunc
	stop   chan struct{} // closed at the end: releases blocked observers
	errc   chan error    // Run's result
}

func start(t *testing.T, cfg MonitorConfig, targets ...Target) *harness {
	t.Helper()
	h := &harness{m: NewMonitor(cfg), stop: make(chan struct{}), errc: make(chan error, 1)}
	h.m.Set(targets)
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.errc <- h.m.Run(ctx) }()
	t.Cleanup(func() {
		h.cancel()
		close(h.stop)
		h.wait(t)
	})
	return h
}

func (h *harness) recorder() *recorder {
	return &recorder{ch: make(chan event), stop: h.stop}
}

// wait waits for Run to return.
func (h *harness) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-h.errc:
		if err != nil {
			t.Errorf("Run() = %v", err)
		}
		h.errc <- nil // for a second wait
	case <-time.After(wait):
		t.Error("Run did not return")
	}
}

func (h *harness) loop(id string) *loop {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return h.m.loops[id]
}

func (h *harness) loopCount() int {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return len(h.m.loops)
}

func waitClosed(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("%s did not happen", what)
	}
}

// scripted is an HTTP backend whose every answer the test chooses: each
// request waits for a status on its channel.
type scripted struct {
	*httptest.Server
	status  chan int
	arrived chan struct{} // one value per request, when it arrives
	hits    atomic.Int64
}

func newScripted(t *testing.T) *scripted {
	s := &scripted{status: make(chan int), arrived: make(chan struct{}, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.arrived <- struct{}{}
		select {
		case code := <-s.status:
			w.WriteHeader(code)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// answer has the next request answered with code.
func (s *scripted) answer(t *testing.T, code int) {
	t.Helper()
	select {
	case s.status <- code:
	case <-time.After(wait):
		t.Fatalf("no request to answer with %d", code)
	}
}

// counting is an HTTP backend that answers 200 at once and counts.
type counting struct {
	*httptest.Server
	hits atomic.Int64
}

func newCounting(t *testing.T) *counting {
	c := &counting{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
	}))
	t.Cleanup(c.Close)
	return c
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func hour(mode Mode) Config { return Config{Mode: mode, Interval: time.Hour, Timeout: wait} }
