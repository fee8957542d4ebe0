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
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutoverproxy/cutover/internal/rawio"
	"github.com/cutoverproxy/cutover/proxy/reqctx"
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
// connection's RawConn, which the runtime does not watch; elsewhere than
// on Linux, the connection's own Read and Write, without the check.
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

// h1conn is one connection to the backend.
type h1conn struct {
	c        net.Conn
	br       *bufio.Reader // reads from the h1conn: c, within limit
	bw       *bufio.Writer
	lastUsed time.Time
	// limit is what br may still read from c: maxResponseHeaderBytes
	// while a response head is read, as net/http's Transport limits it.
	limit int64
	// deadline is the read deadline headDeadline set for a response
	// head; zero once a read of a body cleared it.
	deadline time.Time

	// abort ends c's blocked reads and writes: the request's context
	// ended. onCancel arms it, release disarms it; made once per
	// connection, as are rc and sendFn, so that a request allocates
	// neither.
	abort func()
	ctx   context.Context // the request's, from onCancel to release
	hook  *reqctx.Hook    // armed with abort, or nil
	stop  func() bool     // context.AfterFunc's, when no hook was armed
	rc    syscall.RawConn
	// send's: sendFn checks and writes within a raw read of c; sent
	// says it ran, sendErr is its error.
	sendFn  func(fd uintptr) bool
	sent    bool
	sendErr error
	peekBuf [1]byte
	// wfd is the descriptor while send's callback runs, else -1: Write
	// writes to it directly.
	wfd int
	// readFn is Read's raw read of rp into rn, rerr.
	readFn func(fd uintptr) bool
	rp     []byte
	rn     int
	rerr   error
}

// maxResponseHeaderBytes bounds a response head, as the Transport's
// MaxResponseHeaderBytes does.
const maxResponseHeaderBytes = 1 << 20

var errHeaderTooLarge = errors.New("backend's response headers exceed 1 MiB")

func newH1Conn(c net.Conn) *h1conn {
	pc := &h1conn{c: c, limit: math.MaxInt64, wfd: -1}
	pc.bw = bufio.NewWriterSize(pc, 4<<10)
	pc.br = bufio.NewReaderSize(pc, 16<<10)
	pc.abort = func() { _ = pc.c.SetDeadline(aLongTimeAgo) }
	if sc, ok := c.(syscall.Conn); ok && rawio.Supported {
		if rc, err := sc.SyscallConn(); err == nil {
			pc.rc, pc.sendFn, pc.readFn = rc, pc.sendOnce, pc.rawRead
		}
	}
	return pc
}

// onCancel arranges for pc's blocked reads and writes to end when ctx
// ends: through ctx's reqctx.Hook when it has one (cutover's HTTP/1.1
// server gives one; no lock, no allocation), else context.AfterFunc.
func (pc *h1conn) onCancel(ctx context.Context) {
	pc.ctx = ctx
	if hook := reqctx.From(ctx); hook != nil && hook.Arm(&pc.abort) {
		pc.hook = hook
		if ctx.Err() != nil {
			// Ended before the hook was armed: Fire may have found
			// it empty.
			pc.abort()
		}
		return
	}
	pc.stop = context.AfterFunc(ctx, pc.abort)
}

// release undoes onCancel and reports whether the context ended, as
// context.AfterFunc's stop does: then its abort ran, runs, or was set by
// setReadDeadline, and the connection must not be used again.
func (pc *h1conn) release() (aborted bool) {
	switch {
	case pc.hook != nil:
		pc.hook.Disarm(&pc.abort)
		// The context ends before its hook fires: an ended context
		// covers a Fire that took abort and has yet to run it.
		aborted = pc.ctx.Err() != nil
		pc.hook = nil
	case pc.stop != nil:
		aborted = !pc.stop()
		pc.stop = nil
	}
	pc.ctx = nil
	return aborted
}

// Read reads from the connection within the limit.
func (pc *h1conn) Read(p []byte) (int, error) {
	if pc.limit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > pc.limit {
		p = p[:pc.limit]
	}
	if pc.limit == math.MaxInt64 && !pc.deadline.IsZero() && pc.ctx != nil {
		// The body: the head's deadline, kept until a read of the body
		// needs the connection, no longer holds.
		pc.deadline = time.Time{}
		setReadDeadline(pc.ctx, pc.c, time.Time{})
	}
	n, err := pc.read(p)
	pc.limit -= int64(n)
	return n, err
}

// read reads from c, with a raw read when c has a RawConn.
func (pc *h1conn) read(p []byte) (int, error) {
	if pc.rc == nil {
		return pc.c.Read(p)
	}
	pc.rp, pc.rn, pc.rerr = p, 0, nil
	err := pc.rc.Read(pc.readFn)
	n := pc.rn
	if err == nil {
		err = pc.rerr
	}
	pc.rp, pc.rerr = nil, nil
	switch {
	case err != nil:
		if ne, ok := err.(*net.OpError); ok {
			ne.Op = "read" // RawConn's "raw-read"
			return 0, ne
		}
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: pc.c.LocalAddr(), Addr: pc.c.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// headDeadline makes the read deadline at least d and at most d plus
// headSlack(d) from now, for a response head. It keeps the deadline set
// for an earlier response while that is in range: a connection that
// carries a request every few milliseconds sets one a second, not two a
// request (the head's and the clearing after it, which now waits for a
// body that is not yet all read, see Read).
func (pc *h1conn) headDeadline(d time.Duration) {
	earliest := time.Now().Add(d)
	if pc.deadline.Before(earliest) || pc.deadline.After(earliest.Add(headSlack(d))) {
		pc.deadline = earliest.Add(headSlack(d))
		setReadDeadline(pc.ctx, pc.c, pc.deadline)
	}
}

// headSlack is how much later than d a response-header timeout may end:
// an eighth of d, at most a second.
func headSlack(d time.Duration) time.Duration { return min(d/8, time.Second) }

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

// errNotQuiet: the idle connection send was to write on had something to
// read, the backend's close or bytes it should not have sent. Nothing was
// written; the connection is of no further use.
var errNotQuiet = errors.New("idle backend connection closed or not quiet")

// send writes the buffered request. On a reused connection (check), it
// first peeks at the connection and writes nothing if the backend closed
// it or sent anything (errNotQuiet); else it waits until the connection
// has something to read: the response, or the backend's close.
//
// The peek and the write run within one raw read of the connection, after
// Go's poller has forgotten the connection's last readiness: whatever comes
// after the peek, the response or a close, ends the wait. A plain read
// after the write would first have failed with EAGAIN (the backend cannot
// have answered yet), a system call for nothing. A new connection is not
// peeked at, so it only writes: a backend may have answered already (an
// early 503) and stopped sending, and the wait would have nothing to end
// it. The peek's or the write's error is pc.sendErr; the wait's (a
// deadline) is returned.
func (pc *h1conn) send(check bool) error {
	pc.sent, pc.sendErr = false, nil
	if pc.rc == nil || !check {
		pc.sendErr = pc.bw.Flush()
		return nil
	}
	return pc.rc.Read(pc.sendFn)
}

// sendOnce is send's callback: the first call peeks and writes, then asks
// to wait unless either failed; the next says the wait is over.
func (pc *h1conn) sendOnce(fd uintptr) bool {
	if pc.sent {
		return true
	}
	pc.sent = true
	if _, err := rawio.Peek(int(fd), pc.peekBuf[:]); err != syscall.EAGAIN {
		pc.sendErr = errNotQuiet
		return true
	}
	pc.wfd = int(fd)
	pc.sendErr = pc.bw.Flush()
	pc.wfd = -1
	return pc.sendErr != nil
}

// Write writes p to the connection: within send's callback with raw
// writes for as long as the socket takes them, the rest (and every other
// write) through c.
func (pc *h1conn) Write(p []byte) (int, error) {
	n := 0
	for pc.wfd >= 0 && n < len(p) {
		m, err := rawio.Write(pc.wfd, p[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err == syscall.EAGAIN {
				break
			}
			return n, &net.OpError{Op: "write", Net: "tcp", Source: pc.c.LocalAddr(), Addr: pc.c.RemoteAddr(), Err: os.NewSyscallError("write", err)}
		}
		n += m
	}
	if n == len(p) {
		return n, nil
	}
	m, err := pc.c.Write(p[n:])
	return n + m, err
}

// rawRead is Read's callback: false while the socket has nothing.
func (pc *h1conn) rawRead(fd uintptr) bool {
	for {
		n, err := rawio.Read(int(fd), pc.rp)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		pc.rn, pc.rerr = n, err
		return true
	}
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
