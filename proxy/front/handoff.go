package front

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// handoffListener is the listener Fallback serves: its Accept returns the
// connections that Server hands over.
type handoffListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	addr      atomic.Pointer[net.Addr]
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr {
	if a := l.addr.Load(); a != nil {
		return *a
	}
	return &net.TCPAddr{}
}

func (l *handoffListener) setAddr(a net.Addr) { l.addr.CompareAndSwap(nil, &a) }

// deliver hands c to Fallback; once Fallback stopped it closes c.
func (l *handoffListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// handedConn is a connection handed over: reads return the bytes Server
// read and did not consume first.
type handedConn struct {
	net.Conn
	buf []byte
	// deadline bounds the first read deadline net/http sets (that of
	// the head): the head's time started before the handover. Zero
	// means none.
	deadline time.Time
	set      bool // net/http set a read deadline
}

func (c *handedConn) SetReadDeadline(t time.Time) error {
	if !c.set {
		c.set = true
		if !c.deadline.IsZero() && (t.IsZero() || t.After(c.deadline)) {
			t = c.deadline
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection, which net/http's server does
// before it closes a connection it answered with an error.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
