// Package sendtimeout closes the door on a client that stops reading: a
// write to its connection fails once it has sent no byte for a set time
// (Conn). Streams does the same for the streams of an HTTP/2 connection,
// whose client can starve one stream while the connection goes on.
//
// Why: a proxy streams a response to the client as the backend sends it.
// A client that asks for a large response and then reads nothing (or one
// byte a minute) would hold the proxy's goroutine, the client's socket and
// a backend connection for as long as it likes; many such clients exhaust
// a backend. HAProxy's "timeout client" and nginx's send_timeout (60 s by
// default) bound it; net/http's WriteTimeout bounds the whole response
// instead, which would cut off a long download that is making progress.
//
// The timeout runs per write and only counts time without progress, as
// net/http's HTTP/2 WriteByteTimeout does: each write gets a deadline d
// from its start, extended by d when it runs out after some bytes went
// out: a write fails after d to 2d without progress, never sooner. The
// connection is then given up: every write after fails at once, sparing
// the wait that a TLS close_notify would take under a deadline of its
// own. While the layer above has a write deadline of its own set
// (SetWriteDeadline or SetDeadline with a non-zero time: net/http's TLS
// handshake timeout or WriteTimeout, the proxy's bound on a 101
// response), Conn leaves the deadline to it; once that layer clears it,
// the send timeout is back, from then on for a write that waits meanwhile.
// A write that the caller's deadline ends is the caller's doing: the
// connection is not given up.
// Upgraded connections (WebSocket) keep it: a client that stops reading a
// tunnel is cut off too, as nginx's send_timeout does.
//
// Writes must come from one goroutine at a time, as every user of a
// net.Conn arranges. A deadline set from another goroutine just as a write
// begins may be replaced by that write's.
package sendtimeout

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Conn is a net.Conn whose writes fail with os.ErrDeadlineExceeded (a
// net.Error whose Timeout is true) after d without a byte sent, and so do
// all writes after that one.
type Conn struct {
	net.Conn
	d time.Duration
	// own: the layer above has a write deadline set; Conn sets none.
	own atomic.Bool
	// failed: the error of the write that timed out, which every write
	// after returns at once.
	failed atomic.Pointer[error]
}

// Wrap returns c with a send timeout of d, or c itself when d is not
// positive.
func Wrap(c net.Conn, d time.Duration) net.Conn {
	if d <= 0 {
		return c
	}
	return &Conn{Conn: c, d: d}
}

// Write writes p, failing once d passes with no byte of it sent.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.write(func() (int64, bool, error) {
		m, err := c.Conn.Write(p)
		p = p[m:]
		return int64(m), len(p) == 0, err
	})
	return int(n), err
}

// WriteBuffers writes v as Write writes a buffer, in one writev(2) where
// the connection has it (net.Buffers.WriteTo), consuming v: the response
// writer's head and body go out together.
func (c *Conn) WriteBuffers(v *net.Buffers) (int64, error) {
	return c.write(func() (int64, bool, error) {
		m, err := v.WriteTo(c.Conn)
		return m, len(*v) == 0, err
	})
}

// write calls once until it reports everything written, under the send
// timeout's deadline unless the caller has one set.
func (c *Conn) write(once func() (n int64, done bool, err error)) (int64, error) {
	if err := c.failed.Load(); err != nil {
		return 0, *err
	}
	var n int64
	for {
		// Without a deadline of the caller's, every write sets its
		// own: the one left by the last write is never in the way.
		own := c.own.Load()
		if !own {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(c.d))
		}
		m, done, err := once()
		n += m
		if done || !errors.Is(err, os.ErrDeadlineExceeded) || c.own.Load() {
			// Done, failed otherwise, or the caller's deadline passed.
			return n, err
		}
		if m == 0 && !own {
			failed := err // a copy: err itself stays on the stack
			c.failed.Store(&failed)
			return n, err
		}
		// Bytes went out before the deadline, or the caller cleared
		// its own while the write waited: d more for the rest.
	}
}

// SetWriteDeadline sets the write deadline: until it is cleared (the zero
// time), it replaces the send timeout.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.callers(t) {
		return nil
	}
	return c.Conn.SetWriteDeadline(c.writeDeadline(t))
}

// SetDeadline sets both deadlines; the write deadline replaces the send
// timeout until it is cleared.
func (c *Conn) SetDeadline(t time.Time) error {
	change := c.callers(t)
	if err := c.Conn.SetReadDeadline(t); err != nil || !change {
		return err
	}
	return c.Conn.SetWriteDeadline(c.writeDeadline(t))
}

// callers records t as the caller's write deadline and reports whether
// the connection's changes: not for a clear when none was set, which
// would push back the send timeout of a write that waits.
func (c *Conn) callers(t time.Time) bool {
	had := c.own.Swap(!t.IsZero())
	return had || !t.IsZero()
}

// writeDeadline is the deadline the connection gets when the caller sets
// t: a cleared one becomes the send timeout's, from now, for a write that
// waits meanwhile (from another goroutine); the next write sets its own.
func (c *Conn) writeDeadline(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().Add(c.d)
	}
	return t
}

// CloseWrite half-closes the connection when it can: net/http's server
// does so before it closes a connection it answered with an error.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn returns the connection underneath, as tls.Conn's NetConn does:
// for settings of the socket's own (TCP keep-alive).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Listener wraps the connections of a net.Listener with a send timeout.
type Listener struct {
	net.Listener
	d time.Duration
}

// WrapListener returns ln, whose connections get a send timeout of d, or
// ln itself when d is not positive.
func WrapListener(ln net.Listener, d time.Duration) net.Listener {
	if d <= 0 {
		return ln
	}
	return &Listener{Listener: ln, d: d}
}

// Accept returns the next connection, wrapped.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, d: l.d}, nil
}
