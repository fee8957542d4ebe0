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
	"unsafe"

	"github.com/cutoverproxy/cutover/internal/rawio"
	"github.com/cutoverproxy/cutover/internal/sendtimeout"
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
// net.TCPConn (netConn), under the send timeout when there is one;
// Fallback gets the fastConn.
//
// The send timeout (Server.SendTimeout) costs a write nothing while the
// socket takes its bytes: only a write that finds the socket full, in the
// poller, sets a write deadline of the timeout (armSend), again after
// each wait that sent bytes, and clears it before it returns, unless the
// caller has a write deadline of its own set. A deadline of the caller's
// cleared while a write waits gives that write the send timeout, from
// then (setDeadline).
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

	// The send timeout (Server.SendTimeout; 0 for none): a write that
	// finds the socket full waits with a deadline of send from the last
	// byte written, unless a write deadline of the caller's (wdl) is set.
	// blocked: pollWrite stopped to have that deadline set; armed: it is
	// set; armedAt: wn when it was. waiting: a write is in the poller;
	// rearmed: the caller cleared its deadline meanwhile, and setDeadline
	// gave the write the send timeout's instead, which the write clears
	// when it arms its own, else the next write at its start.
	send             time.Duration
	blocked, armed   bool
	armedAt          int64
	waiting, rearmed atomic.Bool
}

// fastAcceptor accepts fastConns from a TCP listener, for one goroutine.
// A listener's RawConn cannot wait (its Read fails), so the acceptor waits
// for a connection in an epoll set of its own that holds the listener's
// socket, and that set waits in Go's poller as an os.File (proxy/relay's
// loops wait the same way). Every connection is then a fastConn: one
// taken from net.Listener.Accept would be a net.TCPConn, whose reads and
// writes are announced system calls for as long as it lives, each of
// which wakes the runtime's monitor into polling every 20 µs when the
// processors were idle. The set holds the listener's descriptor, not a
// duplicate, so closing the listener closes the socket at once; Close of
// the listener that newAcceptor returns also ends a wait in progress, and
// a listener closed elsewhere is noticed within waitCheck.
type fastAcceptor struct {
	ln *net.TCPListener
	rc syscall.RawConn
	// local is the listener's address when it is a single one (then it
	// is every connection's); nil for a wildcard.
	local    net.Addr
	acceptFn func(fd uintptr)
	fd       int
	sa       unix.RawSockaddrAny // the peer's address
	err      error

	// The epoll set that waits for a connection, and its wait's
	// callback and event (the callback only asks whether one is ready).
	set     *os.File
	setRC   syscall.RawConn
	waitFn  func(fd uintptr) bool
	ready   [1]unix.EpollEvent
	waitErr error
	check   time.Duration // waitCheck; shorter in the tests
}

// waitCheck bounds one wait for a connection, so that a listener closed
// by someone other than the listener newAcceptor returned still ends
// accept.
const waitCheck = time.Second

// newAcceptor returns ln's accept, fastConns for a *net.TCPListener, and
// the listener to close in ln's place, which also ends a wait in accept.
// With netAccept, for a listener that blocks or lingers (rawSafe), or
// where the epoll set cannot be made, accept is ln's Accept, whose
// connections are net.TCPConns.
func newAcceptor(ln net.Listener, netAccept bool) (func() (net.Conn, error), net.Listener) {
	tl, ok := ln.(*net.TCPListener)
	if !ok || netAccept {
		return ln.Accept, ln
	}
	rc, err := tl.SyscallConn()
	if err != nil || !rawSafe(rc) {
		return ln.Accept, ln
	}
	a := &fastAcceptor{ln: tl, rc: rc, check: waitCheck}
	if a.set, err = waitSet(rc); err != nil {
		return ln.Accept, ln
	}
	a.setRC, err = a.set.SyscallConn()
	if err == nil {
		// Fails if the poller did not take the set: its waits would fail.
		err = a.set.SetReadDeadline(time.Time{})
	}
	if err != nil {
		a.set.Close()
		return ln.Accept, ln
	}
	if la, _ := tl.Addr().(*net.TCPAddr); la != nil && !la.IP.IsUnspecified() {
		a.local = la
	}
	a.acceptFn = a.accept4
	a.waitFn = a.poll
	return a.accept, &acceptorListener{TCPListener: tl, a: a}
}

// rawSafe reports whether the listener's accept4 and its connections'
// close may be raw system calls, which the runtime cannot take the
// processor from: the listener does not block (a File of it, made
// blocking by its Fd method, is handed to a child process in a graceful
// restart), and it hands its connections no SO_LINGER, with which a
// close waits for the unsent bytes. A listener made blocking or lingering
// after Serve began would hold a processor in accept4 or close.
func rawSafe(rc syscall.RawConn) bool {
	safe := false
	err := rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK == 0 {
			return
		}
		l, err := unix.GetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER)
		safe = err == nil && l.Onoff == 0
	})
	return err == nil && safe
}

// waitSet returns an epoll set holding rc's socket (level-triggered: the
// set is readable while a connection waits), as a non-blocking os.File,
// which Go's poller takes.
func waitSet(rc syscall.RawConn) (*os.File, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	ctl := func(lfd uintptr) {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(lfd), &unix.EpollEvent{Events: unix.EPOLLIN})
	}
	if cerr := rc.Control(ctl); cerr != nil {
		err = cerr
	}
	if err == nil {
		err = unix.SetNonblock(epfd, true)
	}
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	return os.NewFile(uintptr(epfd), "listener-wait"), nil
}

// acceptorListener is the listener of a fastAcceptor: Close closes the
// listener, then the acceptor's epoll set, which ends a wait in accept.
type acceptorListener struct {
	*net.TCPListener
	a *fastAcceptor
}

func (l *acceptorListener) Close() error {
	err := l.TCPListener.Close()
	l.a.set.Close()
	return err
}

func (a *fastAcceptor) accept4(lfd uintptr) {
	a.fd, a.err = rawio.Accept4(int(lfd), &a.sa, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}

// poll reports whether the epoll set has a connection ready, or failed.
func (a *fastAcceptor) poll(fd uintptr) bool {
	n, err := rawio.PollNow(int(fd), a.ready[:])
	if err == unix.EINTR {
		return false
	}
	a.waitErr = err
	return n > 0 || err != nil
}

// wait waits up to a.check for a connection. An error means the set
// was closed or failed.
func (a *fastAcceptor) wait() error {
	a.waitErr = nil
	_ = a.set.SetReadDeadline(time.Now().Add(a.check))
	err := a.setRC.Read(a.waitFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err == nil && a.waitErr != nil {
		err = os.NewSyscallError("epoll_pwait", a.waitErr)
	}
	return err
}

func (a *fastAcceptor) accept() (net.Conn, error) {
	err := a.rc.Control(a.acceptFn)
	for err == nil && a.err != nil {
		switch a.err {
		case unix.EINTR, unix.ECONNABORTED:
			// A client that reset its connection in the queue.
		case unix.EAGAIN:
			if werr := a.wait(); werr != nil {
				// Closed with the listener, which Control reports, or
				// failed: then accepting cannot go on.
				if err = a.rc.Control(a.acceptFn); err == nil && a.err == unix.EAGAIN {
					err = werr
				}
				continue
			}
		default:
			err = os.NewSyscallError("accept4", a.err)
			continue
		}
		err = a.rc.Control(a.acceptFn)
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.ln.Addr(), Err: err}
	}
	fc := &fastConn{fd: a.fd, remote: tcpAddr(&a.sa), local: a.local}
	if fc.local == nil {
		var sa unix.RawSockaddrAny
		if rawio.Getsockname(a.fd, &sa) == nil {
			fc.local = tcpAddr(&sa)
		} else {
			fc.local = &net.TCPAddr{}
		}
	}
	return fc, nil
}

// tcpAddr is sa as a *net.TCPAddr (an empty one for a family other than
// IPv4 and IPv6).
func tcpAddr(sa *unix.RawSockaddrAny) net.Addr {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: networkPort(a.Port)}
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		zone := ""
		if a.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.Scope_id)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: networkPort(a.Port), Zone: zone}
	}
	return &net.TCPAddr{}
}

// networkPort is a port as a sockaddr holds it, in network byte order.
func networkPort(p uint16) int {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return int(b[0])<<8 | int(b[1])
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
	c.waiting.Store(true)
	if c.rearmed.Load() {
		c.armSend(false) // left by the last write: it may have passed
	}
	c.wv, c.wn, c.werr = v, 0, nil
	c.blocked = false
	err := c.rc.Write(c.writeFn)
	for err == nil && c.blocked {
		// The socket is full: wait with the send timeout's deadline,
		// from now, the first time or after bytes went out.
		c.blocked = false
		c.armSend(true)
		err = c.rc.Write(c.writeFn)
	}
	c.waiting.Store(false)
	if c.armed {
		c.armSend(false)
	}
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
			if c.send > 0 && c.wdl.Load() == 0 && (!c.armed || c.wn > c.armedAt) {
				c.blocked = true // writev sets the deadline, then waits
				return true
			}
			return false
		}
		c.werr = err
		return true
	}
	return true
}

// armSend sets (on) or clears the send timeout's write deadline, unless
// the caller has a write deadline of its own set, which stays. Not from
// pollWrite: a Close waiting for the write to end would hold mu.
func (c *fastConn) armSend(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rearmed.Store(false)
	f := c.file.Load()
	if f == nil || c.closed.Load() || c.wdl.Load() != 0 {
		c.armed = false
		return
	}
	if on {
		_ = f.SetWriteDeadline(time.Now().Add(c.send))
		c.armedAt = c.wn
	} else {
		_ = f.SetWriteDeadline(time.Time{})
	}
	c.armed = on
}

// setSendTimeout gives the connection Server's send timeout, before its
// first write.
func (c *fastConn) setSendTimeout(d time.Duration) { c.send = d }

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
	old := d.Swap(ns)
	f := c.file.Load()
	if f == nil {
		return nil
	}
	if d == &c.wdl && ns == 0 {
		switch {
		case old == 0:
			// Not set: clearing it would clear the send timeout's of
			// a write that waits.
			return nil
		case c.send > 0 && c.waiting.Load():
			// A write waits, under the deadline cleared: it gets the
			// send timeout's, from now.
			c.rearmed.Store(true)
			t = time.Now().Add(c.send)
		}
	}
	return set(f, t)
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
	return rawio.Close(c.fd)
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
	// The duplicate carries the deadlines and the send timeout on.
	nc = sendtimeout.Wrap(nc, c.send)
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
