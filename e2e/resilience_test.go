package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A backend that goes away while requests flow costs no failed request:
// requests that find it refusing are retried on another backend.
func TestBackendStoppedMidRunCostsNoRequest(t *testing.T) {
	for _, workers := range []int{1, 16} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
			in := start(t, fmt.Sprintf(`
services:
  web:
    host: stop.test
    backends: [%s, %s, %s]
`, a.addr(), b.addr(), c.addr()))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan *load)
			go func() { done <- runLoad(ctx, in, "stop.test", "/", workers, 600) }()
			// Stop b once it has served a share of the load.
			eventually(t, 10*time.Second, func() error {
				if b.requests.Load() < 50 {
					return fmt.Errorf("b served %d requests", b.requests.Load())
				}
				return nil
			})
			b.CloseClientConnections()
			b.Close()
			l := <-done
			if l.failed.Load() != 0 {
				t.Fatalf("%d of %d requests failed: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.failures)
			}
			if l.ok.Load() != 600 {
				t.Fatalf("%d requests succeeded, want 600", l.ok.Load())
			}
			if l.count("a") == 0 || l.count("c") == 0 {
				t.Errorf("a served %d, c served %d: want both > 0", l.count("a"), l.count("c"))
			}
		})
	}
}
