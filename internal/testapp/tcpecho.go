package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// serveTCPEcho serves ln as a TCP echo server: each connection is greeted
// with name and a newline, then gets back what it sends. When ctx ends it
// closes ln and the open connections, as the process's exit would, and
// returns once their goroutines ended.
func serveTCPEcho(ctx context.Context, ln net.Listener, name string) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
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
			return fmt.Errorf("tcp echo %s: %w", ln.Addr(), err)
		}
		mu.Lock()
		if ctx.Err() != nil { // the close above ran before c was added
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			if _, err := io.WriteString(c, name+"\n"); err == nil {
				_, _ = io.Copy(c, c)
			}
		})
	}
}
