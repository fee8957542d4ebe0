// Package connserve serves the connections of a TCP listener, each on a
// goroutine of its own, for the small servers of the tests and benchmarks
// (testapp's TCP echo, peerbench's backends and io.Copy forwarder, the e2e
// echo servers): a listener's end closes what it accepted, so that a test
// or a container that stops leaves no connection behind.
package connserve

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// Serve accepts connections on ln and calls serve with each on its own
// goroutine, then closes the connection, until ctx ends or Accept fails.
// When ctx ends it closes ln and the open connections (a serve blocked on
// one returns) and returns nil once every serve returned; a failed Accept
// is returned, after the same wait.
func Serve(ctx context.Context, ln net.Listener, serve func(net.Conn)) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		mu.Lock()
		if ctx.Err() != nil { // the close above ran before c was added
			mu.Unlock()
			_ = c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				_ = c.Close()
			}()
			serve(c)
		})
	}
}
