package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// StatusClientClosed is logged and counted, never sent, when the client
// went away before its response: nginx's 499.
const StatusClientClosed = 499

// fail answers a request that got no response from any backend. It is the
// one place that maps errors to status codes: client gone → 499 (nothing
// is written and nothing logged: the connection is aborted), unreadable
// request body → 400, no route → 404, route known but no available
// backend, or none could be connected to → 503 with Retry-After, timeout
// → 504, any other backend failure → 502.
func (p *Proxy) fail(ex *exchange, err error) {
	code, msg := p.status(ex, err)
	ex.code = code
	if code == StatusClientClosed {
		p.done(ex)
		// Not even the empty 200 that the server makes of a handler that
		// wrote nothing: a client that only half-closed still reads.
		panic(http.ErrAbortHandler)
	}
	if grpcDeadlinePassed(ex) {
		ex.code = http.StatusGatewayTimeout // counted as a timeout; the client gets 200 and grpc-status 4
		grpcDeadlineExceeded(ex.w, false)
		p.done(ex)
		return
	}
	h := ex.w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	if code == http.StatusServiceUnavailable {
		h["Retry-After"] = []string{"1"}
	}
	ex.w.WriteHeader(code)
	n, _ := fmt.Fprintln(ex.w, msg)
	ex.bytes = int64(n)
	if code >= 500 && ex.svc != nil {
		p.logFailure(ex, err, msg)
	}
	p.done(ex)
}

func (p *Proxy) status(ex *exchange, err error) (int, string) {
	switch {
	case ex.r.Context().Err() != nil:
		return StatusClientClosed, ""
	case errors.Is(err, errBadPath):
		return http.StatusBadRequest, "cutover: the path has . or .. segments: send the resolved path"
	case errors.Is(err, errBadTarget):
		return http.StatusBadRequest, "cutover: the query has a space: percent-encode it"
	case errors.Is(err, errConnect):
		return http.StatusMethodNotAllowed, "cutover: CONNECT is not supported"
	case errors.Is(err, errNoRoute):
		return http.StatusNotFound, fmt.Sprintf("cutover: no route for host %q and path %q", ex.r.Host, ex.r.URL.Path)
	case errors.Is(err, errBadRequestBody):
		return http.StatusBadRequest, "cutover: the request body could not be read"
	case errors.Is(err, errNoBackend):
		return http.StatusServiceUnavailable, fmt.Sprintf("cutover: service %q has no available backend", ex.svc.name)
	case isDialError(err) && !isTimeout(err):
		return http.StatusServiceUnavailable, fmt.Sprintf("cutover: service %q: no backend could be reached", ex.svc.name)
	case isTimeout(err):
		return http.StatusGatewayTimeout, fmt.Sprintf("cutover: service %q: backend did not answer in time", ex.svc.name)
	}
	return http.StatusBadGateway, fmt.Sprintf("cutover: service %q: backend failed: no response", ex.svc.name)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// logFailure logs a request that failed with a 5xx, at most once a second
// per service so that an outage does not flood the log; the line says how
// many were left out. Backend state changes are logged where they happen.
func (p *Proxy) logFailure(ex *exchange, err error, msg string) {
	st := ex.svc.stats
	now := time.Now().UnixNano()
	last := st.lastFailLog.Load()
	if now-last < int64(time.Second) || !st.lastFailLog.CompareAndSwap(last, now) {
		st.suppressed.Add(1)
		return
	}
	e := p.log.Warn().Str("service", ex.svc.name).Str("request_id", ex.id).Int("status", ex.code)
	if n := st.suppressed.Swap(0); n > 0 {
		e = e.Int64("similar_not_logged", n)
	}
	if ex.backend != nil {
		e = e.Str("backend", ex.backend.Name())
	}
	if err != nil && !errors.Is(err, errNoBackend) {
		e = e.Err(err)
	}
	e.Msg(msg)
}

// done counts the finished request and writes its access log line.
func (p *Proxy) done(ex *exchange) {
	stats := p.unrouted
	if ex.svc != nil {
		stats = ex.svc.stats
		stats.duration.Observe(time.Since(ex.start).Seconds())
	}
	stats.count(ex.r.Method, ex.code)
	if p.cfg.AccessLog {
		p.accessLog(ex)
	}
}

func (p *Proxy) accessLog(ex *exchange) {
	e := p.log.Info().
		Str("method", ex.r.Method).
		Str("host", ex.r.Host).
		Str("path", ex.r.URL.Path).
		Int("status", ex.code).
		Int64("bytes", ex.bytes).
		Dur("duration", time.Since(ex.start)).
		Str("client", ex.r.RemoteAddr)
	if ex.id != "" {
		e = e.Str("request_id", ex.id)
	}
	if ex.svc != nil {
		e = e.Str("service", ex.svc.name)
	}
	if ex.backend != nil {
		e = e.Str("backend", ex.backend.Name())
	}
	e.Msg("request")
}
