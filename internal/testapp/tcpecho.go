package main

import (
	"context"
	"io"
	"net"

	"github.com/cutoverproxy/cutover/internal/connserve"
)

// serveTCPEcho serves ln as a TCP echo server: each connection is greeted
// with name and a newline, then gets back what it sends. When ctx ends it
// closes ln and the open connections, as the process's exit would, and
// returns once their goroutines ended.
func serveTCPEcho(ctx context.Context, ln net.Listener, name string) error {
	return connserve.Serve(ctx, ln, func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err == nil {
			_, _ = io.Copy(c, c)
		}
	})
}
