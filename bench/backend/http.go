// Package backend is the origin server of the peer benchmarks: an HTTP
// server that answers fixed-size bodies with keep-alive, and a TCP server
// that echoes or streams. It is deliberately small so that the proxies in
// front of it, not the backend, dominate the figures.
//
// Servers are safe for concurrent use; each Serve call blocks until its
// context ends or its listener fails.
package backend

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest body the HTTP server answers; larger sizes are
// clamped.
const MaxBody = 4 << 20

// DefaultBody is the body size of a path that names none.
const DefaultBody = 100

// body is the bytes every response is cut from: never written to after
// package initialization.
var body = func() []byte {
	b := make([]byte, MaxBody)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// BodySize returns the body size a request path asks for: "/b/N" is N bytes
// (clamped to MaxBody), any other path DefaultBody.
func BodySize(path string) int {
	rest, ok := strings.CutPrefix(path, "/b/")
	if !ok {
		return DefaultBody
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return DefaultBody
	}
	return min(n, MaxBody)
}

// handler answers every request with 200 and a body of BodySize(path) bytes.
func handler(w http.ResponseWriter, r *http.Request) {
	n := BodySize(r.URL.Path)
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(n)}
	_, _ = w.Write(body[:n])
}

// ServeHTTP serves the benchmark HTTP handler on ln until ctx ends.
// Connections stay open for keep-alive up to two minutes of idleness, longer
// than any proxy under test keeps an idle backend connection.
func ServeHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           http.HandlerFunc(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
