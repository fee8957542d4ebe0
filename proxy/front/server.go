// Package front is the client side of the proxy's plain-HTTP listener: an
// HTTP/1.1 server for the common request, with net/http's server behind it
// for everything else.
//
// Why: net/http's server spends, on every keep-alive request, a goroutine
// and a read system call that waits for the client to close (its
// "background read"), a context, two or three deadline changes and a
// textproto parse into fresh maps. Those are a large part of what a Go
// proxy pays per request beyond HAProxy's cost. Server parses the head
// itself into one string, gives the request a context per connection
// (made by reqctx.WithCancel: the proxy arms its Hook to stop a backend
// exchange when the client goes, without a lock per request), and
// watches for a client that goes away only once a request lasted longer
// than a tick (watchTick): short requests, nearly all of them, pay none of
// that.
//
// Strictness: Server takes only requests whose head it fully understands
// (see parse.go): HTTP/1.1, a request-target in origin form, CRLF line
// endings, one valid Host, header names that are tokens and values without
// control bytes, no body (no Content-Length or Transfer-Encoding), no
// Expect, Upgrade or Pragma, and a head that fits its buffer. From the
// first request it does not take, it hands the connection, with the bytes
// it read and did not consume, to Fallback (a net/http server), which
// serves it to its end: every malformed, ambiguous or unusual request is
// answered by net/http, exactly as without this package. Between
// requests Server waits as net/http's server does: for 4 bytes under the
// idle timeout (a client that ends before them gets no answer), dropping
// CR and LF among them after a POST. strict_test.go holds the two to the
// same answers, byte stream by byte stream, and parse_fuzz_test.go
// searches for a difference.
//
// TCP keep-alive: Server turns keep-alive probes on for the connections
// it hands over and those of requests that outlast a tick; give it a
// listener with keep-alive off (net.ListenConfig{KeepAlive: -1}) to spare
// the other connections four system calls each, as HAProxy and nginx do.
// Connections accepted bare (below) have it off whatever the listener
// says.
//
// Bare connections (Linux): from a *net.TCPListener, Server accepts
// every connection itself, with a raw accept4, and serves it outside Go's
// poller for as long as its reads and writes find the socket ready
// (fastConn); the first that would wait hands the socket to the poller.
// A connection of one request then makes 8 system calls instead of 11 to
// 12: no epoll_ctl add and delete, no getsockname for a listener on one
// address, no TCP_NODELAY before a second write. When no connection
// waits, Server waits in an epoll set that holds the listener
// (fastAcceptor). Hijacking handlers get a net.TCPConn; Fallback gets
// the connection as it is.
//
// Send timeout: a write to a client that has taken no byte for
// SendTimeout fails, and the connection is closed (internal/sendtimeout
// has the why and the rules); fastConns keep the timeout themselves, at
// no cost to a write that does not wait, other connections and hijacked
// ones come wrapped in a sendtimeout.Conn.
//
// Concurrency: one goroutine per connection, kept for the next
// connection for a while when its own ends. The request path takes no
// lock; Server's mutex guards the set of connections and listeners, taken
// when a connection starts or ends, by the watch tick, and by Shutdown. A
// fastConn's mutex orders its rarer changes (the move to the poller,
// deadlines, Close) and is not taken by reads and writes.
package front

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutoverproxy/cutover/internal/sendtimeout"
)

// Server serves HTTP/1.1 on its listeners, handing what it does not take
// to Fallback. The zero value is not usable: set Handler and Fallback.
// Server's fields must not change after Serve is called.
type Server struct {
	// Handler serves the requests Server parses itself. Fallback's
	// Handler serves the others; they are normally the same.
	Handler http.Handler
	// Fallback serves the connections handed over (see the package
	// doc). Serve starts it on an internal listener; Shutdown and Close
	// stop it. Server reads its ReadHeaderTimeout, IdleTimeout,
	// ReadTimeout (for the first two when they are zero), MaxHeaderBytes,
	// Protocols (h2c) and ErrorLog, as net/http does. WriteTimeout,
	// SetKeepAlivesEnabled, ConnState and ConnContext apply to the
	// connections handed over only.
	Fallback *http.Server
	// SendTimeout is how long a write to a client may go without
	// sending a byte (the client reads nothing) before it fails and the
	// connection is closed; see internal/sendtimeout. It applies to the
	// connections handed to Fallback and to hijacked ones too. Zero
	// means none.
	SendTimeout time.Duration

	init     sync.Once
	handoff  *handoffListener
	shutting atomic.Bool
	served   atomic.Uint64
	handed   atomic.Uint64
	date     atomic.Pointer[string]

	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	stopTick  chan struct{} // closed when Shutdown returns, or by Close
	work      chan *conn    // to a worker waiting for a connection
	tickOnce  sync.Once
	done      sync.WaitGroup // the tick and Fallback.Serve; Close and Shutdown wait

	// netAccept: connections come from the listener's Accept (on Linux,
	// net.TCPConns instead of fastConns); for the tests.
	netAccept bool
}

// watchTick is how often Server looks for requests that outlasted a tick,
// to watch their client for a close, and refreshes the Date header.
const watchTick = 200 * time.Millisecond

// Served returns the number of requests Server parsed and served itself.
func (s *Server) Served() uint64 { return s.served.Load() }

// HandedOver returns the number of connections handed to Fallback.
func (s *Server) HandedOver() uint64 { return s.handed.Load() }

func (s *Server) setup() {
	s.init.Do(func() {
		s.handoff = newHandoffListener()
		s.conns = map[*conn]struct{}{}
		s.listeners = map[net.Listener]struct{}{}
		s.stopTick = make(chan struct{})
		s.work = make(chan *conn)
		s.refreshDate(time.Now())
		s.done.Go(s.tick)
		s.done.Go(func() { _ = s.Fallback.Serve(s.handoff) })
	})
}

// Serve accepts connections on ln and serves them until Shutdown or
// Close, when it returns http.ErrServerClosed; else it returns the
// listener's error. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.setup()
	accept, ln := newAcceptor(ln, s.netAccept)
	if !s.trackListener(ln) {
		ln.Close()
		return http.ErrServerClosed
	}
	defer s.untrackListener(ln)
	var backoff time.Duration
	for {
		c, err := accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			if temporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("http: Accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if st, ok := c.(interface{ setSendTimeout(time.Duration) }); ok {
			st.setSendTimeout(s.SendTimeout)
		} else {
			c = sendtimeout.Wrap(c, s.SendTimeout)
		}
		cc := newConn(s, c)
		if !s.trackConn(cc) {
			c.Close()
			continue
		}
		select {
		case s.work <- cc:
		default:
			go s.worker(cc)
		}
	}
}

// temporary reports whether an accept error is one Serve waits out, as
// net/http does: running out of file descriptors or memory, timeouts.
func temporary(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR)
}

// workerIdle is how long a connection's goroutine waits for another
// connection once its own ended.
const workerIdle = 10 * time.Second

// worker serves cc, then the connections Serve gives it, until none came
// for workerIdle. A new connection thus mostly starts on a goroutine
// whose stack has grown already: growing one, by copying, costs a
// connection of one request a tenth of its CPU.
func (s *Server) worker(cc *conn) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		cc.serve()
		idle.Reset(workerIdle)
		select {
		case cc = <-s.work:
		case <-idle.C:
			return
		case <-s.stopTick:
			return
		}
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in
// progress finish (their connections close after them), and shuts
// Fallback down, until ctx ends: then it returns ctx's error and leaves
// the rest to Close. Requests in progress are still watched for clients
// that go away.
func (s *Server) Shutdown(ctx context.Context) error {
	s.setup()
	s.stop()
	defer s.stopTicking()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for s.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
	err := <-fallback
	s.stopTicking()
	s.done.Wait()
	return err
}

// Close closes the listeners and every connection at once, Fallback's
// too.
func (s *Server) Close() error {
	s.setup()
	s.stop()
	s.stopTicking()
	s.mu.Lock()
	for cc := range s.conns {
		cc.c.Close()
	}
	s.mu.Unlock()
	err := s.Fallback.Close()
	s.done.Wait()
	return err
}

// stop ends accepting.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

// stopTicking ends the watch tick.
func (s *Server) stopTicking() { s.tickOnce.Do(func() { close(s.stopTick) }) }

// closeIdle interrupts the connections that wait for a request and
// returns how many connections are left.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		if cc.phase.Load() == phaseIdle {
			_ = cc.c.SetReadDeadline(aLongTimeAgo)
		}
	}
	return len(s.conns)
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	s.handoff.setAddr(ln.Addr())
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
	ln.Close()
}

func (s *Server) trackConn(cc *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.conns[cc] = struct{}{}
	return true
}

func (s *Server) untrackConn(cc *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, cc)
}

// tick refreshes the Date header and starts watching the clients of
// requests that lasted a whole tick, until Shutdown or Close.
func (s *Server) tick() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for {
		select {
		case <-s.stopTick:
			return
		case now := <-t.C:
			s.refreshDate(now)
			s.watchLong()
		}
	}
}

func (s *Server) watchLong() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		cc.watchIfLong()
	}
}

func (s *Server) refreshDate(now time.Time) {
	d := now.UTC().Format(http.TimeFormat)
	if p := s.date.Load(); p == nil || *p != d {
		s.date.Store(&d)
	}
}

// readHeaderTimeout and idleTimeout are net/http's: ReadTimeout when
// zero; no timeout when negative.
func (s *Server) readHeaderTimeout() time.Duration {
	if d := s.Fallback.ReadHeaderTimeout; d != 0 {
		return d
	}
	return s.Fallback.ReadTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if d := s.Fallback.IdleTimeout; d != 0 {
		return d
	}
	return s.Fallback.ReadTimeout
}

// maxHead is the longest head Server reads: its buffer, or Fallback's
// MaxHeaderBytes when that is less. Longer heads go to net/http.
func (s *Server) maxHead() int {
	if m := s.Fallback.MaxHeaderBytes; m > 0 && m < headBufSize {
		return m
	}
	return headBufSize
}

// h2c reports whether Fallback serves HTTP/2 with prior knowledge.
func (s *Server) h2c() bool {
	return s.Fallback.Protocols != nil && s.Fallback.Protocols.UnencryptedHTTP2()
}

// logf logs through Fallback's ErrorLog, as net/http's server would.
func (s *Server) logf(format string, args ...any) {
	if l := s.Fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
	}
}

// aLongTimeAgo is a deadline in the past: it interrupts a blocked read.
var aLongTimeAgo = time.Unix(1, 0)
