package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// TestConcurrentUpdates sends requests from many goroutines while another
// one swaps tables back and forth and a third scrapes the metrics. Run it
// with -race. Every request must succeed: backend b is in every table, a
// request that was sent to a backend before it was removed still finishes
// there, and one whose connection to it was still being dialled moves to
// the current table (counted as a retry).
func TestConcurrentUpdates(t *testing.T) {
	a, b, c := namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "c")
	drainingC := endpoint("c", c)
	drainingC.State = discovery.Draining
	cookie := withCookie(service("app", endpoint("a", a), endpoint("b", b), drainingC))
	snaps := []discovery.Snapshot{
		snapshot(service("app", endpoint("a", a), endpoint("b", b))),
		snapshot(service("app", endpoint("b", b), endpoint("c", c)), hostService("other", "other.test", endpoint("a", a))),
		snapshot(cookie),
	}
	h := newHarness(t, Config{})
	h.p.Update(snaps[0])

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var background sync.WaitGroup
	background.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			h.p.Update(snaps[i%len(snaps)])
			runtime.Gosched() // leave the clients time with one CPU
		}
	})
	background.Go(func() {
		for ctx.Err() == nil {
			if _, err := h.reg.Gather(); err != nil {
				t.Error(err)
				return
			}
			for _, svc := range h.p.Table().Services() {
				for _, b := range svc.Backends() {
					_, _ = b.State(), b.Name()
				}
			}
			runtime.Gosched()
		}
	})

	const workers, perWorker = 8, 100
	errs := make(chan error, workers)
	var clients sync.WaitGroup
	for w := range workers {
		clients.Go(func() {
			errs <- sendMany(ctx, h, w, perWorker)
		})
	}
	clients.Wait()
	cancel()
	background.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if b := h.p.Backend("app", id); b != nil {
			if b.InFlight() != 0 {
				t.Errorf("backend %s: %d in flight after all requests", id, b.InFlight())
			}
		}
	}
}

func sendMany(ctx context.Context, h *harness, worker, n int) error {
	for i := range n {
		req, err := http.NewRequestWithContext(ctx, "GET", h.front.URL+fmt.Sprintf("/%d/%d", worker, i), nil)
		if err != nil {
			return err
		}
		req.Host = "app.test"
		res, err := h.client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d/%d: %d %s", worker, i, res.StatusCode, body)
		}
	}
	return nil
}
