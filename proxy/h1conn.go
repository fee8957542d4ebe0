package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/cutoverproxy/cutover/internal/rawio"
	"github.com/cutoverproxy/cutover/proxy/reqctx"
)

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
// request (the head's and the clearing after it, which Read does only
// when a read of the body needs the socket).
func (pc *h1conn) headDeadline(d time.Duration) {
	earliest := time.Now().Add(d)
	latest := earliest.Add(headSlack(d))
	if pc.deadline.Before(earliest) || pc.deadline.After(latest) {
		pc.deadline = latest
		setReadDeadline(pc.ctx, pc.c, pc.deadline)
	}
}

// headSlack is how much later than d a response-header timeout may end:
// an eighth of d, at most a second.
func headSlack(d time.Duration) time.Duration { return min(d/8, time.Second) }

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
	n, err, done := rawio.ReadNow(int(fd), pc.rp)
	pc.rn, pc.rerr = n, err
	return done
}
