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
	"sync/atomic"
	"time"

	"github.com/cutoverproxy/cutover/internal/connserve"
)

// dialTimeout bounds a connection to a backend.
const dialTimeout = 2 * time.Second

// Forward accepts TCP connections on ln until ctx ends and joins each to
// the next of backends in turn with two io.Copy calls. It closes every
// open connection before it returns.
func Forward(ctx context.Context, ln net.Listener, backends []string) error {
	var next atomic.Uint64
	return connserve.Serve(ctx, ln, func(c net.Conn) {
		join(ctx, c, backends[(next.Add(1)-1)%uint64(len(backends))])
	})
}

// join dials addr and copies both ways until both directions are done, or
// ctx ends (the client's connection is then closed by connserve, the
// backend's here).
func join(ctx context.Context, client net.Conn, addr string) {
	up, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return
	}
	defer func() { _ = up.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = up.Close() })
	defer stop()
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
