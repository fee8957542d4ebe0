package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// transport makes the per-backend round trippers. Every backend has its own
// connection pool so that draining or removing it closes exactly its idle
// connections.
type transport struct {
	protocol       discovery.Protocol
	dialTimeout    time.Duration
	headerTimeout  time.Duration
	idleTimeout    time.Duration
	maxIdlePerHost int
}

// dialError marks an error that happened before any byte of the request
// was sent: such a request can always be retried on another backend.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial backend: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialer dials addr. Dials still pending when life ends (the backend was
// removed: its container died) fail at once, so their requests move to
// another backend instead of waiting out the dial timeout on an address
// that no longer answers.
func (t transport) dialer(life context.Context, addr string) func(ctx context.Context, _, _ string) (net.Conn, error) {
	d := &net.Dialer{Timeout: t.dialTimeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(life, cancel)()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, &dialError{err}
		}
		return c, nil
	}
}

// roundTripper returns the backend's round tripper and a function that
// closes its idle connections.
func (t transport) roundTripper(life context.Context, addr string) (http.RoundTripper, func()) {
	tr := &http.Transport{
		DialContext:            t.dialer(life, addr),
		DisableCompression:     true,
		MaxIdleConnsPerHost:    t.maxIdlePerHost,
		IdleConnTimeout:        t.idleTimeout,
		ResponseHeaderTimeout:  t.headerTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        32 << 10,
		ReadBufferSize:         32 << 10,
	}
	if t.protocol == discovery.H2C {
		// Cleartext HTTP/2 with prior knowledge, as gRPC servers expect.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return tr, tr.CloseIdleConnections
}

// isDialError reports whether err happened before the request was sent.
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}
