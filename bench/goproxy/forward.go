// Package goproxy holds the two reference proxies of the peer benchmarks,
// written with the standard library only: a TCP forwarder built on io.Copy
// (which splices between TCP sockets on Linux) and an HTTP reverse proxy
// built on httputil.ReverseProxy. They mark what Go gives for free, with
// none of cutover's features (metrics, health, retries, routing).
package goproxy

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds a connection to a backend.
const dialTimeout = 2 * time.Second

// Forward accepts TCP connections on ln until ctx ends and joins each to
// the next of backends in turn with two io.Copy calls. It closes every
// open connection before it returns.
func Forward(ctx context.Context, ln net.Listener, backends []string) error {
	var (
		next  atomic.Uint64
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		addr := backends[(next.Add(1)-1)%uint64(len(backends))]
		track(c, true)
		wg.Go(func() {
			defer track(c, false)
			join(c, addr, track)
		})
	}
}

// join dials addr and copies both ways until both directions are done.
func join(client net.Conn, addr string, track func(net.Conn, bool)) {
	defer func() { _ = client.Close() }()
	up, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return
	}
	track(up, true)
	defer track(up, false)
	defer func() { _ = up.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, client)
		closeWrite(up)
	}()
	_, _ = io.Copy(client, up)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
