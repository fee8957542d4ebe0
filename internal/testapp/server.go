package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DefaultShutdownTimeout is how long a graceful shutdown waits for
// in-flight requests before closing their connections.
const DefaultShutdownTimeout = 10 * time.Second

// serve serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish for up to grace, and closes what
// is left. It serves HTTP/1.1 and cleartext HTTP/2 (h2c, prior knowledge).
func serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		Protocols:         &protocols,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.Join(fmt.Errorf("shutdown: in-flight requests still running after %v", grace), srv.Close())
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
