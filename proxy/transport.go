package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
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
	rootCAs        *x509.CertPool // of https backends; nil means the system's
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
		if err := life.Err(); err != nil {
			// Removed already: AfterFunc below would cancel on a
			// goroutine of its own, which a fast dial can outrun.
			return nil, &dialError{err}
		}
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
	dial := t.dialer(life, addr)
	if t.protocol == discovery.HTTP {
		fast := newH1(dial, max(t.maxIdlePerHost, 1), t.idleTimeout, t.headerTimeout)
		slow := &lazyTransport{t: t, addr: addr, dial: dial}
		return dualTransport{fast: fast, slow: slow}, func() {
			fast.closeIdle()
			slow.CloseIdleConnections()
		}
	}
	tr := t.httpTransport(addr, dial)
	if t.protocol == discovery.HTTPS {
		return httpsRoundTripper{tr}, tr.CloseIdleConnections
	}
	return tr, tr.CloseIdleConnections
}

// httpTransport is net/http's Transport towards the backend at addr.
func (t transport) httpTransport(addr string, dial func(ctx context.Context, _, _ string) (net.Conn, error)) *http.Transport {
	tr := &http.Transport{
		DialContext:            dial,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    t.maxIdlePerHost,
		IdleConnTimeout:        t.idleTimeout,
		ResponseHeaderTimeout:  t.headerTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        32 << 10,
		ReadBufferSize:         32 << 10,
	}
	switch t.protocol {
	case discovery.H2C:
		// Cleartext HTTP/2 with prior knowledge, as gRPC servers expect.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	case discovery.HTTPS:
		// HTTP/2 when the backend offers it by ALPN, else HTTP/1.1; an
		// upgrade (WebSocket) always asks for HTTP/1.1.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP1(true)
		tr.Protocols.SetHTTP2(true)
		tr.TLSClientConfig = t.tlsConfig(addr)
		tr.TLSHandshakeTimeout = t.dialTimeout
	}
	return tr
}

// lazyTransport is net/http's Transport of a plain-HTTP backend, made for
// the first request that the fast path does not carry (a body, an
// upgrade): most backends never need one, and a table of thousands of
// backends is built without making thousands.
type lazyTransport struct {
	t    transport
	addr string
	dial func(ctx context.Context, _, _ string) (net.Conn, error)
	tr   atomic.Pointer[http.Transport]
}

func (l *lazyTransport) transport() *http.Transport {
	if tr := l.tr.Load(); tr != nil {
		return tr
	}
	// Two first requests may race: one Transport wins, the other is
	// dropped before it held a connection.
	l.tr.CompareAndSwap(nil, l.t.httpTransport(l.addr, l.dial))
	return l.tr.Load()
}

func (l *lazyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return l.transport().RoundTrip(r)
}

// CloseIdleConnections closes the Transport's idle connections, if it was
// made.
func (l *lazyTransport) CloseIdleConnections() {
	if tr := l.tr.Load(); tr != nil {
		tr.CloseIdleConnections()
	}
}

// tlsConfig is the TLS configuration towards an https backend at addr.
// A backend addressed by name gets that name as SNI and must present a
// certificate for it; one addressed by IP (containers are) must present a
// certificate with that IP address among its subject alternative names.
func (t transport) tlsConfig(addr string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            t.rootCAs,
		ClientSessionCache: tls.NewLRUClientSessionCache(16),
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	return cfg
}

// httpsRoundTripper sends the proxy's outbound requests (scheme http)
// over TLS.
type httpsRoundTripper struct{ tr *http.Transport }

func (h httpsRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	out := *r
	u := *r.URL
	u.Scheme = "https"
	out.URL = &u
	res, err := h.tr.RoundTrip(&out)
	if err != nil && isHandshakeError(err) {
		// Nothing of the request was sent: like a failed dial, it may
		// go to another backend.
		return nil, &dialError{err}
	}
	return res, err
}

// isHandshakeError reports whether err is a failed TLS handshake with a
// backend: its certificate was refused, or it does not speak TLS.
func isHandshakeError(err error) bool {
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	return errors.As(err, &cv) ||
		errors.As(err, &rh) && rh.Msg == "first record does not look like a TLS handshake"
}

// isDialError reports whether err happened before the request was sent.
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}
