package proxy

import (
	"context"
	"net"
	"sync"
)

// tunnels tracks upgraded connections (WebSockets and others), which
// http.Server.Shutdown neither waits for nor closes.
type tunnels struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

// add registers a client connection; false means the proxy is shutting
// down and the tunnel must not start.
func (t *tunnels) add(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.open == nil {
		t.open = map[net.Conn]struct{}{}
	}
	t.open[c] = struct{}{}
	t.wg.Add(1)
	return true
}

func (t *tunnels) done(c net.Conn) {
	t.mu.Lock()
	delete(t.open, c)
	t.mu.Unlock()
	t.wg.Done()
}

// Shutdown refuses new upgrades, waits for the open tunnels to end until
// ctx is done, then closes those left and waits for them to wind down.
func (p *Proxy) Shutdown(ctx context.Context) error {
	t := &p.tunnels
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	ended := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	for c := range t.open {
		_ = c.Close()
	}
	t.mu.Unlock()
	<-ended
	return ctx.Err()
}
