package front

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutoverproxy/cutover/internal/rawio"
	"golang.org/x/sys/unix"
)

// fastConn is a client connection that Server accepted itself and that
// starts outside Go's poller: its reads and writes are plain system calls
// on the socket for as long as each finds the socket ready. The first that
// would have to wait (a read before the client sent, a write to a full
// socket) hands the socket to the poller, as an os.File over the same
// descriptor (two system calls), and every read and write after goes
// through the poller as net.TCPConn's do, waiting there but reading and
// writing, as before, with raw system calls (internal/rawio) that the
// runtime does not watch. A connection that carries one
// request, whose bytes are there when it is read and whose response fits
// the socket, never enters the poller: it spares the epoll_ctl add and
// delete, the getsockname and the setsockopt(TCP_NODELAY) of a
// connection from net.Listener.Accept, a third of the system calls of a
// connection that carries one small request. TCP_NODELAY is set before the
// connection's second write, the first that Nagle's algorithm could hold
// (accepted sockets do not inherit it from the listener). A fastConn has no TCP keep-alive probes, whatever
// the listener's net.ListenConfig says, until keepAlive.
//
// Reads come from one goroutine at a time (serve, or watch while the
// handler runs), writes from serve; deadlines and Close may come from any
// goroutine. Close waits for the system calls in flight on the bare
// socket before it closes it, so that none reaches a descriptor number
// reused meanwhile. A handler that hijacks the connection gets a
// net.TCPConn (netConn); Fallback gets the fastConn.
type fastConn struct {
	fd            int
	local, remote net.Addr

	// mu orders the changes: the move to the poller, Close, deadlines.
	mu   sync.Mutex
	file atomic.Pointer[os.File] // set once the socket is in the poller
	rc   syscall.RawConn         // file's, set before file
	// closed: Close ran; inflight counts system calls on the bare socket.
	closed   atomic.Bool
	inflight atomic.Int32
	// Deadlines in Unix nanoseconds, 0 for none: the bare socket's
	// reads and writes check them; file has them too once it is set.
	rdl, wdl atomic.Int64
	writes   atomic.Int32 // the second sets TCP_NODELAY (counted that far)

	// The poller's read and write, made by the move to the poller: their
	// arguments and results pass through these fields.
	readFn, writeFn func(fd uintptr) bool
	rp              []byte
	rn              int
	rerr            error
	wv              [][]byte
	wn              int64
	werr            error
	// one holds Write's buffer for writev, which would otherwise move
	// a vector of one to the heap on every call.
	one [1][]byte
}

// fastAcceptor accepts fastConns from a TCP listener, for one goroutine.
// A listener's RawConn cannot wait (its Read fails), so an accept4 that
// finds no connection waiting leaves the wait to the listener's Accept,
// whose connection is a net.TCPConn; under load, connections wait in the
// queue and come as fastConns.
type fastAcceptor struct {
	ln *net.TCPListener
	rc syscall.RawConn
	// local is the listener's address when it is a single one (then it
	// is every connection's); nil for a wildcard.
	local    net.Addr
	acceptFn func(fd uintptr)
	fd       int
	sa       unix.Sockaddr
	err      error
	// bareOnly: wait for a connection by trying again (Server.bareOnly).
	bareOnly bool
}

// newAcceptor returns ln's accept: fastConns (or net.TCPConns, see
// fastAcceptor) for a *net.TCPListener, ln.Accept for others.
func newAcceptor(ln net.Listener, bareOnly bool) func() (net.Conn, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln.Accept
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return ln.Accept
	}
	a := &fastAcceptor{ln: tl, rc: rc, bareOnly: bareOnly}
	if la, _ := tl.Addr().(*net.TCPAddr); la != nil && !la.IP.IsUnspecified() {
		a.local = la
	}
	a.acceptFn = a.accept4
	return a.accept
}

func (a *fastAcceptor) accept4(lfd uintptr) {
	a.fd, a.sa, a.err = unix.Accept4(int(lfd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}

func (a *fastAcceptor) accept() (net.Conn, error) {
	a.err = nil
	err := a.rc.Control(a.acceptFn)
	for err == nil && a.err != nil {
		switch {
		case a.err == unix.EINTR || a.err == unix.ECONNABORTED:
			// A client that reset its connection in the queue.
		case a.err == unix.EAGAIN && a.bareOnly:
			time.Sleep(100 * time.Microsecond)
		case a.err == unix.EAGAIN:
			return a.ln.Accept()
		default:
			err = os.NewSyscallError("accept4", a.err)
			continue
		}
		err = a.rc.Control(a.acceptFn)
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.ln.Addr(), Err: err}
	}
	fc := &fastConn{fd: a.fd, remote: sockaddrAddr(a.sa), local: a.local}
	if fc.local == nil {
		fc.local = &net.TCPAddr{}
		if lsa, err := unix.Getsockname(a.fd); err == nil {
			fc.local = sockaddrAddr(lsa)
		}
	}
	return fc, nil
}

// sockaddrAddr is sa as a *net.TCPAddr.
func sockaddrAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: a.Port}
	case *unix.SockaddrInet6:
		zone := ""
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port, Zone: zone}
	}
	return &net.TCPAddr{}
}

func (c *fastConn) LocalAddr() net.Addr  { return c.local }
func (c *fastConn) RemoteAddr() net.Addr { return c.remote }

// bare makes one system call on the bare socket, unless the socket is in
// the poller or closed (ok false).
func (c *fastConn) bare(call func(fd int) (int, error)) (n int, err error, ok bool) {
	c.inflight.Add(1)
	defer c.inflight.Add(-1)
	if c.closed.Load() || c.file.Load() != nil {
		return 0, nil, false
	}
	n, err = call(c.fd)
	return n, err, true
}

// expired returns the timeout error once the deadline d has passed.
func expired(d *atomic.Int64) error {
	if t := d.Load(); t != 0 && time.Now().UnixNano() >= t {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (c *fastConn) Read(p []byte) (int, error) {
	if c.file.Load() == nil {
		if err := expired(&c.rdl); err != nil {
			return 0, c.opErr("read", err)
		}
		for {
			n, err, ok := c.bare(func(fd int) (int, error) { return rawio.Read(fd, p) })
			if !ok {
				break
			}
			switch {
			case n > 0:
				return n, nil
			case err == nil:
				if len(p) == 0 {
					return 0, nil
				}
				return 0, io.EOF
			case err == unix.EINTR:
				continue
			case err != unix.EAGAIN:
				return 0, c.opErr("read", err)
			}
			break
		}
		if err := c.toPoller(); err != nil {
			return 0, c.opErr("read", err)
		}
	}
	c.rp, c.rn, c.rerr = p, 0, nil
	if err := c.rc.Read(c.readFn); err != nil {
		c.rp = nil
		return 0, c.opErr("read", err)
	}
	n, err := c.rn, c.rerr
	c.rp, c.rerr = nil, nil
	switch {
	case n > 0:
		return n, nil
	case err != nil:
		return 0, c.opErr("read", err)
	case len(p) == 0:
		return 0, nil
	}
	return 0, io.EOF
}

// pollRead is the poller's read: false while the socket has nothing.
func (c *fastConn) pollRead(fd uintptr) bool {
	n, err, done := rawio.ReadNow(int(fd), c.rp)
	c.rn, c.rerr = n, err
	return done
}

func (c *fastConn) Write(p []byte) (int, error) {
	c.one[0] = p
	n, err := c.writev(c.one[:])
	c.one[0] = nil
	return int(n), err
}

// writev writes every buffer of v, in order, with writev(2).
func (c *fastConn) writev(v [][]byte) (int64, error) {
	if c.writes.Load() < 2 && c.writes.Add(1) == 2 {
		c.noDelay()
	}
	var total int64
	if c.file.Load() == nil {
		if err := expired(&c.wdl); err != nil {
			return 0, c.opErr("write", err)
		}
		for len(v) > 0 {
			n, err, ok := c.bare(func(fd int) (int, error) { return rawio.Writev(fd, v) })
			if !ok {
				break
			}
			if n > 0 {
				total += int64(n)
				v = consume(v, n)
				continue
			}
			if err == nil {
				return total, nil // nothing was left to write
			}
			if err == unix.EINTR {
				continue
			}
			if err != unix.EAGAIN {
				return total, c.opErr("write", err)
			}
			if err := c.toPoller(); err != nil {
				return total, c.opErr("write", err)
			}
			break
		}
		if len(v) == 0 {
			return total, nil
		}
		if c.file.Load() == nil {
			return total, c.opErr("write", net.ErrClosed)
		}
	}
	c.wv, c.wn, c.werr = v, 0, nil
	err := c.rc.Write(c.writeFn)
	total += c.wn
	if err == nil {
		err = c.werr
	}
	c.wv, c.werr = nil, nil
	if err != nil {
		return total, c.opErr("write", err)
	}
	return total, nil
}

// pollWrite is the poller's write: false while the socket is full.
func (c *fastConn) pollWrite(fd uintptr) bool {
	for len(c.wv) > 0 {
		n, err := rawio.Writev(int(fd), c.wv)
		if n > 0 {
			c.wn += int64(n)
			c.wv = consume(c.wv, n)
			continue
		}
		switch err {
		case nil:
			return true // nothing was left to write
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		c.werr = err
		return true
	}
	return true
}

// consume drops the first n bytes of v.
func consume(v [][]byte, n int) [][]byte {
	for len(v) > 0 && n >= len(v[0]) {
		n -= len(v[0])
		v = v[1:]
	}
	if len(v) > 0 {
		v[0] = v[0][n:]
	}
	return v
}

// noDelay sets TCP_NODELAY, as net.TCPConn has it.
func (c *fastConn) noDelay() {
	c.control(func(fd int) {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	})
}

// control runs f with the socket, bare or in the poller, unless closed.
func (c *fastConn) control(f func(fd int)) {
	if _, _, ok := c.bare(func(fd int) (int, error) { f(fd); return 0, nil }); ok {
		return
	}
	if c.file.Load() != nil {
		_ = c.rc.Control(func(fd uintptr) { f(int(fd)) })
	}
}

// toPoller hands the socket to Go's poller, once.
func (c *fastConn) toPoller() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.toPollerLocked()
}

func (c *fastConn) toPollerLocked() error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if c.file.Load() != nil {
		return nil
	}
	f := os.NewFile(uintptr(c.fd), "tcp")
	rc, _ := f.SyscallConn() // fails only for a nil File
	applyDeadline(f.SetReadDeadline, c.rdl.Load())
	applyDeadline(f.SetWriteDeadline, c.wdl.Load())
	c.rc = rc
	c.readFn, c.writeFn = c.pollRead, c.pollWrite
	c.file.Store(f)
	return nil
}

// applyDeadline gives set the deadline ns (Unix nanoseconds, 0 for none).
func applyDeadline(set func(time.Time) error, ns int64) {
	if ns == 0 {
		_ = set(time.Time{})
	} else {
		_ = set(time.Unix(0, ns))
	}
}

func (c *fastConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *fastConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, t, (*os.File).SetReadDeadline)
}

func (c *fastConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, t, (*os.File).SetWriteDeadline)
}

func (c *fastConn) setDeadline(d *atomic.Int64, t time.Time, set func(*os.File, time.Time) error) error {
	ns := int64(0)
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	d.Store(ns)
	if f := c.file.Load(); f != nil {
		return set(f, t)
	}
	return nil
}

// Close closes the socket, once the system calls in flight on the bare
// socket are over (they do not wait). One may have begun before the move
// to the poller and still run.
func (c *fastConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeLocked()
}

func (c *fastConn) closeLocked() error {
	if c.closed.Swap(true) {
		return c.opErr("close", net.ErrClosed)
	}
	for c.inflight.Load() != 0 {
		runtime.Gosched()
	}
	if f := c.file.Load(); f != nil {
		return f.Close()
	}
	return unix.Close(c.fd)
}

// CloseWrite shuts the sending half, as net.TCPConn's does.
func (c *fastConn) CloseWrite() error {
	err := error(net.ErrClosed)
	c.control(func(fd int) { err = unix.Shutdown(fd, unix.SHUT_WR) })
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// keepAlive turns TCP keep-alive probes on, as keepAlive does for a
// net.TCPConn.
func (c *fastConn) keepAlive() {
	c.control(func(fd int) {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdle)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveInterval)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount)
	})
}

// netConn returns the connection as a *net.TCPConn, for a handler that
// hijacks it; c is closed and must not be used after. Under c's mutex
// throughout: a Close meanwhile would let net.FileConn duplicate a
// descriptor number reused by then.
func (c *fastConn) netConn() (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.toPollerLocked(); err != nil {
		return nil, err
	}
	nc, err := net.FileConn(c.file.Load())
	if err != nil {
		return nil, err
	}
	// The duplicate carries the deadlines on.
	applyDeadline(nc.SetReadDeadline, c.rdl.Load())
	applyDeadline(nc.SetWriteDeadline, c.wdl.Load())
	_ = c.closeLocked()
	return nc, nil
}

// opErr wraps err as net.TCPConn's errors are.
func (c *fastConn) opErr(op string, err error) error {
	if c.closed.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
		// The poller's error for a closed file, or os.ErrClosed.
		err = net.ErrClosed
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if se, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, se)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}
