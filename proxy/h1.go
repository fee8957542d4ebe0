package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1 is the HTTP/1.1 client of one plain-HTTP backend for the common case:
// a request without a body and without an upgrade. It writes the request
// and reads the response on the caller's goroutine, over a pool of idle
// connections, where net/http's Transport hands every request to two
// goroutines of the connection and back. Responses are read within the
// Transport's header limit, the common ones by readResponse, the others by
// net/http (ReadResponse). Requests come either from the handler, written
// by writeRequest straight from the client's request (tests hold its bytes
// to Request.Write's), or through dualTransport as outbound requests,
// written by Request.Write. Every other request (bodies, upgrades, Expect)
// goes to the Transport. A pooled connection is checked for a close or
// stray bytes as the request is written, and the response is waited for
// without a read that fails first (send). The check, the writes within
// send and the reads are raw system calls (internal/rawio) on the
// connection's RawConn, which the runtime does not watch (announced ones
// on other Unix systems). The connection's side is h1conn (h1conn.go).
type h1 struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// idle is the pool of idle connections, made by the first put: a
	// table of thousands of backends does not pay for a pool each up front.
	idle          atomic.Pointer[chan *h1conn]
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration
	closed        atomic.Bool // the backend is removed: no connection is kept
	// discard: closeIdle was called (the backend drains); connections
	// that finish their response are closed too, until one is dialled.
	discard atomic.Bool
}

func newH1(dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, idleTimeout, headerTimeout time.Duration) *h1 {
	return &h1{dial: dial, maxIdle: maxIdle, idleTimeout: idleTimeout, headerTimeout: headerTimeout}
}

// pool returns the pool of idle connections; nil (which holds nothing)
// before the first put.
func (h *h1) pool() chan *h1conn {
	if p := h.idle.Load(); p != nil {
		return *p
	}
	return nil
}

// makePool returns the pool of idle connections, making it.
func (h *h1) makePool() chan *h1conn {
	if p := h.pool(); p != nil {
		return p
	}
	p := make(chan *h1conn, h.maxIdle)
	if h.idle.CompareAndSwap(nil, &p) {
		return p
	}
	return h.pool()
}

// eligible reports whether the fast path can carry r, an outbound
// request.
func (h *h1) eligible(r *http.Request) bool {
	return r.Body == nil && r.Header["Upgrade"] == nil && r.Header["Expect"] == nil
}

// fastEligible reports whether the fast path can carry the client's
// request r as it is: a request-target in origin form (or "*"), no body,
// no upgrade, no 100-continue, and a Host that needs none of the changes
// Request.Write makes (an IPv6 zone removed, a non-ASCII name in
// punycode). Of an HTTP/1 request, Host is the Host header, which
// net/http's server checked. net/http's HTTP/2 server gives every request
// a Body: one whose stream ended with its headers has ContentLength 0 and
// no Content-Length header; its Host is :authority, which the server does
// not check, so it is checked here.
func fastEligible(r *http.Request) bool {
	if r.Header["Upgrade"] != nil || r.Header["Expect"] != nil ||
		!strings.HasPrefix(r.RequestURI, "/") && r.RequestURI != "*" ||
		strings.IndexByte(r.Host, '%') >= 0 {
		return false
	}
	switch r.ProtoMajor {
	case 1:
		return (r.Body == nil || r.Body == http.NoBody) && len(r.TransferEncoding) == 0
	case 2:
		return r.ContentLength == 0 && r.Header["Content-Length"] == nil && httpguts.ValidHostHeader(r.Host)
	}
	return false
}

// wireWriter writes outbound headers to the backend connection.
type wireWriter struct{ bw *bufio.Writer }

func (w wireWriter) add(k string, vs []string) {
	if k == "Content-Length" {
		return // the request has no body: writeRequest writes its length
	}
	for _, v := range vs {
		w.add1(k, v)
	}
}

func (w wireWriter) add1(k, v string) {
	w.bw.WriteString(k)
	w.bw.WriteString(": ")
	w.bw.WriteString(v)
	w.bw.WriteString("\r\n")
}

// writeRequest writes the client's request r, which has no body and an
// origin-form target (fastEligible), to the backend at addr: the request
// line, Host (addr for an HTTP/1.0 client that sent none), the outbound
// headers (eachOutbound) and, as net/http's Request.Write does for a
// request without a body, "Content-Length: 0" for POST, PUT and PATCH.
// Header keys and values were validated by net/http when it read r.
func writeRequest(bw *bufio.Writer, r *http.Request, addr, requestID string) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	// As outbound builds it for the Transport: the path escaped again
	// (a client's raw \, quotes or bytes above 0x7f go out
	// percent-encoded), then the query.
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath}
	bw.WriteString(u.EscapedPath())
	if r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	if r.Host != "" {
		bw.WriteString(r.Host)
	} else {
		bw.WriteString(addr)
	}
	bw.WriteString("\r\n")
	eachOutbound(r, requestID, wireWriter{bw})
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// get returns an idle connection that has not outlived the idle timeout
// (reused), or dials one; fresh skips the idle ones. An idle connection is
// checked for a close, or bytes the backend sent meanwhile (an answer to
// no request), as the request is written (send): backends close idle
// connections on their own keep-alive timeouts, and a stray answer would
// be read as the next request's.
func (h *h1) get(ctx context.Context, fresh bool) (*h1conn, bool, error) {
	for !fresh {
		var pc *h1conn
		select {
		case pc = <-h.pool():
		default:
		}
		if pc == nil {
			break
		}
		if time.Since(pc.lastUsed) <= h.idleTimeout {
			return pc, true, nil
		}
		pc.c.Close()
	}
	c, err := h.dial(ctx, "tcp", "")
	if err != nil {
		return nil, false, err
	}
	h.discard.Store(false)
	return newH1Conn(c), false, nil
}

// put returns a connection whose response was read to its end.
func (h *h1) put(pc *h1conn) {
	if h.closed.Load() || h.discard.Load() || pc.br.Buffered() > 0 {
		// Bytes after the response: the connection is out of step.
		pc.c.Close()
		return
	}
	pc.lastUsed = time.Now()
	select {
	case h.makePool() <- pc:
		if h.closed.Load() || h.discard.Load() {
			// close or closeIdle ran meanwhile, and may have emptied
			// the pool before pc was in it.
			h.drainIdle()
		}
	default:
		pc.c.Close()
	}
}

// closeIdle closes the idle connections; those in use close when their
// response ends if the backend was removed (see close).
func (h *h1) closeIdle() {
	h.discard.Store(true)
	h.drainIdle()
}

// drainIdle closes the idle connections.
func (h *h1) drainIdle() {
	idle := h.pool()
	for {
		select {
		case pc := <-idle:
			pc.c.Close()
		default:
			return
		}
	}
}

// sweep closes idle connections older than the idle timeout.
func (h *h1) sweep() {
	idle := h.pool()
	for range len(idle) {
		select {
		case pc := <-idle:
			if time.Since(pc.lastUsed) > h.idleTimeout {
				pc.c.Close()
				continue
			}
			select {
			case idle <- pc:
			default:
				pc.c.Close()
			}
		default:
			return
		}
	}
}

// close stops keeping connections: the backend is gone.
func (h *h1) close() {
	h.closed.Store(true)
	h.closeIdle()
}

// aLongTimeAgo is a deadline in the past: it interrupts a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// wireRequest says how do writes its request r to a backend connection:
// as net/http writes it (std, an outbound request), or from the client's
// request as writeRequest writes it, to the backend at addr with the
// request ID id. A struct, not an interface: the exchange the proxy's
// request comes from stays on its goroutine's stack.
type wireRequest struct {
	std      bool
	addr, id string
}

func (w *wireRequest) writeTo(bw *bufio.Writer, r *http.Request) error {
	if w.std {
		return r.Write(bw)
	}
	return writeRequest(bw, r, w.addr, w.id)
}

// RoundTrip sends r on an idle or new connection.
func (h *h1) RoundTrip(r *http.Request) (*http.Response, error) {
	return h.do(r, &wireRequest{std: true})
}

// do writes a request with w and reads the response to r (whose
// context and method count). A reused connection that turns out to be
// closed by the backend before any byte of the answer is retried once on
// a newly dialled one, for an idempotent request, as net/http does.
func (h *h1) do(r *http.Request, w *wireRequest) (*http.Response, error) {
	for try := 0; ; try++ {
		pc, reused, err := h.get(r.Context(), try > 0)
		if err != nil {
			return nil, err
		}
		res, err := h.exchange(pc, r, w, reused)
		if err == nil {
			return res, nil
		}
		pc.c.Close()
		if err == errNotQuiet {
			try-- // nothing was sent: the next idle connection, or a new one
			continue
		}
		if !reused || try > 0 || r.Context().Err() != nil || !staleConn(err) || !idempotent(r.Method) {
			return nil, err
		}
	}
}

// exchange writes a request and reads the response headers. check: pc is
// reused, and send checks it first.
func (h *h1) exchange(pc *h1conn, r *http.Request, w *wireRequest, check bool) (*http.Response, error) {
	pc.onCancel(r.Context())
	if err := w.writeTo(pc.bw, r); err != nil {
		pc.release()
		return nil, err
	}
	if h.headerTimeout > 0 {
		pc.headDeadline(h.headerTimeout)
	}
	err := pc.send(check)
	if pc.sendErr != nil {
		pc.release()
		return nil, pc.sendErr
	}
	var res *http.Response
	if err == nil {
		pc.limit = maxResponseHeaderBytes
		res, err = readFinalResponse(pc.br, r)
		pc.limit = math.MaxInt64
	}
	if err != nil {
		pc.release()
		if ne, ok := err.(net.Error); ok && ne.Timeout() && r.Context().Err() == nil {
			return nil, errHeaderTimeout
		}
		return nil, err
	}
	res.Body = &h1body{rc: res.Body, pc: pc, h: h, keep: !res.Close}
	return res, nil
}

// setReadDeadline sets c's read deadline to t, unless ctx has ended: the
// deadline in the past that the h1conn's abort set (to stop a blocked
// read) must not be replaced.
func setReadDeadline(ctx context.Context, c net.Conn, t time.Time) {
	_ = c.SetReadDeadline(t)
	if ctx.Err() != nil {
		_ = c.SetDeadline(aLongTimeAgo)
	}
}

// readFinalResponse reads a response, skipping informational ones (103
// Early Hints) but for 101.
func readFinalResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	for {
		res, err := readResponse(br, r)
		if err != nil {
			return nil, err
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			return res, nil
		}
	}
}

// errHeaderTimeout is the fast path's response-header timeout.
var errHeaderTimeout = timeoutError("timeout awaiting response headers")

type timeoutError string

func (e timeoutError) Error() string   { return string(e) }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// staleConn reports whether err says that a reused connection was closed
// by the backend before it answered: nothing of the answer was read.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// h1body is a response body that gives its connection back to the pool
// when it was read to its end, and closes it otherwise.
type h1body struct {
	rc     io.ReadCloser
	pc     *h1conn
	h      *h1
	keep   bool
	eof    bool
	failed bool // a read failed
	done   bool
}

func (b *h1body) Read(p []byte) (int, error) {
	if b.done {
		// The connection may be another request's by now.
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		// A body cut short (io.ErrUnexpectedEOF) reads io.EOF after
		// it: the connection must not go back to the pool all the same.
		b.failed = true
	}
	return n, err
}

func (b *h1body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	canceled := b.pc.release()
	if b.eof && !b.failed && b.keep && !canceled {
		b.h.put(b.pc)
		return nil
	}
	return b.pc.c.Close()
}

// dualTransport sends what the fast path can carry through it, the rest
// through net/http's Transport.
type dualTransport struct {
	fast *h1
	slow *lazyTransport
}

func (d dualTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.fast.eligible(r) {
		return d.fast.RoundTrip(r)
	}
	return d.slow.RoundTrip(r)
}
