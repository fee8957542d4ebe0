package main

import (
	"context"
	"sync"
	"sync/atomic"
)

// gate holds requests while it is on, as a hung application would: the
// request has been accepted and read, and no answer comes until the gate
// is switched off or the client goes away. Its zero value is off. It is
// safe for concurrent use.
type gate struct {
	mu      sync.Mutex
	release chan struct{} // non-nil while on; closed when switched off
	held    atomic.Int64  // requests waiting in wait now
}

// set switches the gate on or off. Switching it off lets every held
// request go on.
func (g *gate) set(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case on && g.release == nil:
		g.release = make(chan struct{})
	case !on && g.release != nil:
		close(g.release)
		g.release = nil
	}
}

// wait returns at once while the gate is off. While it is on, it blocks
// until the gate is switched off, and then reports true, or until ctx
// ends, and then reports false: the client is gone, answer nothing.
func (g *gate) wait(ctx context.Context) bool {
	g.mu.Lock()
	release := g.release
	g.mu.Unlock()
	if release == nil {
		return true
	}
	g.held.Add(1)
	defer g.held.Add(-1)
	select {
	case <-release:
		return true
	case <-ctx.Done():
		return false
	}
}
