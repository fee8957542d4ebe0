package front

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutoverproxy/cutover/proxy/reqctx"
)

// headBufSize is the read buffer of a connection: a head that does not
// fit goes to net/http, whose limit is MaxHeaderBytes.
const headBufSize = 8 << 10

// Phases of a connection.
const (
	phaseIdle    int32 = iota // waiting for or reading a request head
	phaseActive               // the handler runs; nobody reads the client
	phaseWatched              // the handler runs; watch reads the client
)

// conn is one client connection.
type conn struct {
	s      *Server
	c      net.Conn
	remote string
	buf    []byte // buf[r:w] is read and not yet consumed
	r, w   int
	// hijacked: a handler took the connection over; serve leaves it.
	hijacked bool
	ctx      context.Context // of every request: ends when the client goes
	cancel   context.CancelFunc
	tmpl     *http.Request // carries ctx: requests are copies of it
	phase    atomic.Int32
	seq      atomic.Uint64 // requests started
	seen     uint64        // seq at the last watch tick; under s.mu
	expires  time.Time     // the read deadline set, zero when none

	// watch: under mu, taken only by requests that lasted a tick.
	mu       sync.Mutex
	aborting bool          // the handler ended: watch must stop reading
	watchEnd chan struct{} // watch's read returned
	got      [1]byte       // what watch read, when watchN is 1
	watchN   int
}

// headBufs pools the read buffers of connections.
var headBufs = sync.Pool{New: func() any { b := make([]byte, headBufSize); return &b }}

func newConn(s *Server, c net.Conn) *conn {
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.LocalAddr())
	// The proxy stops a backend exchange through the Hook when the
	// client goes: context.AfterFunc would take a lock per request.
	ctx, cancel, _ := reqctx.WithCancel(ctx)
	return &conn{
		s: s, c: c, remote: c.RemoteAddr().String(), buf: *headBufs.Get().(*[]byte),
		ctx: ctx, cancel: cancel, tmpl: new(http.Request).WithContext(ctx),
	}
}

// serve reads and serves requests until the connection ends or goes to
// Fallback.
func (cc *conn) serve() {
	handed := false
	defer func() {
		cc.cancel()
		cc.s.untrackConn(cc)
		if !handed && !cc.hijacked {
			cc.c.Close()
		}
		if len(cc.buf) == headBufSize {
			headBufs.Put(&cc.buf)
		}
	}()
	afterPost := false
	for served := false; !cc.s.shutting.Load(); served = true {
		head, err := cc.readHead(!served, afterPost)
		if err != nil {
			// Bytes of a head that did not come whole (the client
			// stopped or closed, the head is too large or has bare
			// LFs): net/http answers them as it would, a timeout too.
			// Fewer than peekLen bytes of a later request it would
			// not have read at all.
			if handed = cc.r < cc.w && err != errIdleEnd && !cc.s.shutting.Load(); handed {
				cc.handOver(cc.expires)
			}
			return
		}
		box := new(requestBox)
		req, ok := parse(head, &box.url, box.values[:])
		if !ok {
			if served && cc.s.h2c() && head == h2Preface {
				// net/http looks for the preface at the start of a
				// connection only: after requests it reads it as an
				// HTTP/1 request, PRI *, and closes after it. Handed
				// over, it would be taken for a connection's start.
				cc.r += len(head)
				cc.serveRequest(&request{method: "PRI", target: "*", url: &url.URL{Path: "*"},
					header: http.Header{}, close: true, preface: true}, &box.r)
				return
			}
			cc.handOver(time.Time{})
			handed = true
			return
		}
		cc.r += len(head)
		if !cc.serveRequest(&req, &box.r) {
			return
		}
		afterPost = req.method == http.MethodPost
	}
}

// readHead returns the next request head, reading as needed. The first
// request's head must come within the read header timeout. After it, as
// net/http does, the first peekLen bytes of another request must come
// within the idle timeout (a read that fails before them is errIdleEnd),
// and the rest of the head within the read header timeout; after a POST,
// CR and LF bytes among those first ones are dropped. A head that does not
// fit the buffer is an error.
func (cc *conn) readHead(first, afterPost bool) (string, error) {
	switch {
	case first:
		cc.setDeadline(cc.s.readHeaderTimeout())
	case cc.w-cc.r < peekLen:
		if cc.r == cc.w {
			cc.r, cc.w = 0, 0
		}
		cc.extendDeadline(cc.s.idleTimeout())
	}
	timed, peeked := first, first
	for {
		if !peeked && cc.w-cc.r >= peekLen {
			peeked = true
			if afterPost {
				// RFC 9112, section 2.2: net/http skips the empty
				// lines some clients send after a POST's body.
				cc.r += leadingCRLF(cc.buf[cc.r : cc.r+peekLen])
			}
		}
		if i := bytes.Index(cc.buf[cc.r:cc.w], crlfcrlf); i >= 0 && i+4 <= cc.s.maxHead() {
			return string(cc.buf[cc.r : cc.r+i+4]), nil
		}
		if !peeked {
			// net/http's server waits for these bytes (a Peek) before
			// it reads another request: until they came, nothing is
			// parsed, and an error ends the connection unanswered.
			if err := cc.fill(); err != nil && cc.w-cc.r < peekLen {
				return "", errIdleEnd
			}
			continue
		}
		if !timed {
			// The rest, or net/http if it gets the head, has the read
			// header timeout.
			cc.setDeadline(cc.s.readHeaderTimeout())
			timed = true
		}
		if hasBareLF(cc.buf[cc.r:cc.w]) {
			// net/http reads lines that end in LF alone: it decides.
			return "", errBareLF
		}
		if cc.w-cc.r >= cc.s.maxHead() {
			return "", errHeadTooLarge
		}
		if err := cc.fill(); err != nil {
			return "", err
		}
	}
}

// fill reads what the connection has into the buffer, moving the
// unconsumed bytes to its start when it is full to its end.
func (cc *conn) fill() error {
	if cc.w == len(cc.buf) {
		cc.w = copy(cc.buf, cc.buf[cc.r:cc.w])
		cc.r = 0
	}
	n, err := cc.c.Read(cc.buf[cc.w:])
	cc.w += n
	return err
}

// leadingCRLF counts the CR and LF bytes b starts with.
func leadingCRLF(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

// h2Preface is the head that starts the preface of HTTP/2 with prior
// knowledge.
const h2Preface = "PRI * HTTP/2.0\r\n\r\n"

// peekLen is how many bytes of a request after the first net/http's
// server waits for, under the idle timeout, before it reads it.
const peekLen = 4

var (
	crlfcrlf        = []byte("\r\n\r\n")
	errIdleEnd      = errors.New("connection ended between requests")
	errHeadTooLarge = errors.New("request head larger than the buffer")
	errBareLF       = errors.New("request head with a line ending in LF alone")
)

// hasBareLF reports whether b has an LF that no CR precedes.
func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// extendDeadline makes the read deadline at least d from now, changing
// it only when it is more than an eighth of d short of that: most
// requests of a busy connection then change no deadline.
func (cc *conn) extendDeadline(d time.Duration) {
	if d <= 0 {
		if !cc.expires.IsZero() {
			cc.setDeadline(0)
		}
		return
	}
	now := time.Now()
	if cc.expires.IsZero() || cc.expires.Sub(now) < d-d/8 || cc.expires.Sub(now) > d {
		cc.expires = now.Add(d)
		_ = cc.c.SetReadDeadline(cc.expires)
	}
}

// setDeadline sets the read deadline to d from now; zero means none.
func (cc *conn) setDeadline(d time.Duration) {
	if d <= 0 {
		cc.expires = time.Time{}
	} else {
		cc.expires = time.Now().Add(d)
	}
	_ = cc.c.SetReadDeadline(cc.expires)
}

// handOver gives the connection, from the unconsumed bytes on, to
// Fallback. A head that was being read keeps its deadline: net/http's
// first read deadline is made no later.
func (cc *conn) handOver(deadline time.Time) {
	cc.s.handed.Add(1)
	keepAlive(cc.c)
	_ = cc.c.SetReadDeadline(time.Time{})
	hc := &handedConn{Conn: cc.c, buf: bytes.Clone(cc.buf[cc.r:cc.w]), deadline: deadline}
	cc.s.untrackConn(cc)
	cc.s.handoff.deliver(hc)
}

// requestBox is a request with room for its URL and the single values of
// its header: one allocation where there would be three.
type requestBox struct {
	r      http.Request
	url    url.URL
	values [12]string
}

// serveRequest runs the handler for req, made into r, and reports whether
// the connection may serve another request.
func (cc *conn) serveRequest(req *request, r *http.Request) bool {
	*r = *cc.tmpl
	r.Method = req.method
	r.URL = req.url
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Header = req.header
	r.Body = http.NoBody
	r.Host = req.host
	r.RemoteAddr = cc.remote
	r.RequestURI = req.target
	r.Close = req.close
	if req.preface {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		r.ContentLength = -1
	}
	w := getResponse(cc, r)
	defer putResponse(w)
	cc.seq.Add(1)
	cc.phase.Store(phaseActive)
	ok := cc.runHandler(w, r)
	cc.s.served.Add(1)
	if w.hijacked {
		cc.hijacked = true
		return false
	}
	// When the watch read the client's close (or an error) during the
	// request, the connection's context ended. As with net/http, the
	// response still goes out whole, since a client that only
	// half-closed reads on, and so do the answers to the requests it
	// sent before its close, whose context has ended too; the next read
	// that finds the close ends the connection.
	cc.stopWatch()
	if !ok {
		// What the handler wrote goes out before the close, as with
		// net/http: after a panic the client sees a cut-short response.
		_ = w.bw.flush()
		return false
	}
	return w.finish()
}

// runHandler calls the handler and reports whether it returned: a panic
// ends the connection (logged unless it is http.ErrAbortHandler).
func (cc *conn) runHandler(w *response, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				cc.s.logf("http: panic serving %v: %v\n%s", cc.remote, v, buf)
			}
		}
	}()
	cc.s.Handler.ServeHTTP(w, r)
	return true
}

// watchIfLong starts reading the client of a request that lasted since
// the last tick, to end the request's context if the client goes away.
// The caller holds s.mu.
func (cc *conn) watchIfLong() {
	seq := cc.seq.Load()
	long := seq == cc.seen
	cc.seen = seq
	if !long || cc.phase.Load() != phaseActive {
		return
	}
	// Set before the phase changes: serve reads it once it sees the
	// change.
	cc.watchEnd = make(chan struct{})
	if cc.phase.CompareAndSwap(phaseActive, phaseWatched) {
		go cc.watch()
	}
}

// keepAlive turns TCP keep-alive probes on, with net.ListenConfig's
// default period, for a connection that may outlive its request (a
// stream, a WebSocket): a client that vanished is found out. Short
// requests spare the system calls when the listener has keep-alive off.
func keepAlive(c net.Conn) {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = u.NetConn() // under a send timeout
	}
	switch c := c.(type) {
	case *net.TCPConn:
		_ = c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: keepAliveIdle * time.Second,
			Interval: keepAliveInterval * time.Second, Count: keepAliveCount})
	case interface{ keepAlive() }:
		c.keepAlive()
	}
}

// The keep-alive probes' idle time and interval in seconds, and count.
const (
	keepAliveIdle     = 15
	keepAliveInterval = 15
	keepAliveCount    = 9
)

// asNetConn returns c as a net.Conn of the standard library's, which a
// hijacking handler gets: a fastConn becomes a net.TCPConn.
func asNetConn(c net.Conn) (net.Conn, error) {
	if fc, ok := c.(interface{ netConn() (net.Conn, error) }); ok {
		return fc.netConn()
	}
	return c, nil
}

// watch reads the client while the handler runs: a close or an error
// ends the connection's context; a byte (the next pipelined request) is
// kept for the next head.
func (cc *conn) watch() {
	defer close(cc.watchEnd)
	cc.mu.Lock()
	if cc.aborting {
		cc.mu.Unlock()
		return
	}
	_ = cc.c.SetReadDeadline(time.Time{})
	cc.mu.Unlock()
	keepAlive(cc.c)
	n, err := cc.c.Read(cc.got[:])
	cc.watchN = n
	cc.mu.Lock()
	aborted := cc.aborting
	cc.mu.Unlock()
	if err != nil && !(aborted && isTimeout(err)) {
		cc.cancel()
	}
}

// stopWatch ends the handler's phase, stopping watch if it runs.
func (cc *conn) stopWatch() {
	if cc.phase.CompareAndSwap(phaseActive, phaseIdle) || cc.phase.Load() == phaseIdle {
		return
	}
	cc.endWatch()
}

// endWatch stops watch once the handler returned.
func (cc *conn) endWatch() {
	cc.mu.Lock()
	cc.aborting = true
	_ = cc.c.SetReadDeadline(aLongTimeAgo)
	cc.mu.Unlock()
	<-cc.watchEnd
	cc.mu.Lock()
	cc.aborting = false
	cc.mu.Unlock()
	cc.expires = aLongTimeAgo // stale: the next wait sets a deadline
	if cc.watchN == 1 {
		// The byte came after what buf holds.
		if cc.r == cc.w {
			cc.r, cc.w = 0, 0
		}
		if cc.w == len(cc.buf) {
			cc.buf = append(cc.buf, 0)
			cc.buf = cc.buf[:cap(cc.buf)]
		}
		cc.buf[cc.w] = cc.got[0]
		cc.w++
		cc.watchN = 0
	}
	cc.phase.Store(phaseIdle)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
