package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

const (
	// helloTimeout bounds the wait for a client's TLS ClientHello.
	helloTimeout = 5 * time.Second
	// maxHello bounds the bytes read to find it. ClientHellos are a few
	// kilobytes, post-quantum key shares included.
	maxHello = 64 << 10
)

// Passthrough wraps the HTTPS listener ln for TLS passthrough. For each
// connection it reads the client's TLS ClientHello, without consuming it,
// to learn the server name (SNI). When the name is a host of a service with
// tls.passthrough (exact, else the longest wildcard, as for HTTP routes;
// a terminated route with a more specific host keeps its connections), the
// raw connection goes to a backend of that service, ClientHello included,
// as a tcp.listen connection would (balancer, health, drain, PROXY
// protocol, metrics): the backend terminates TLS, with its own
// certificate. The service's protocol may be tcp or http, the bytes are
// the same; with http its routes also serve plain HTTP, so set
// redirect-https or tls on it. Every other connection (another name, no
// name, not TLS, too slow: 5s) is returned by Accept with the bytes read so
// far put back, for the caller's TLS server.
//
// Accept does not wait for a slow client: each connection is read in a
// goroutine of its own. Close stops accepting and closes the connections
// still being read. Passthrough connections outlive Close: they end when
// a side closes, when their backend has drained for Config.DrainGrace, or
// when Shutdown's time is up; Shutdown waits for them.
func (p *Proxy) Passthrough(ln net.Listener) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &passthroughListener{
		p: p, ln: ln, ctx: ctx, cancel: cancel,
		ready: make(chan net.Conn), done: make(chan struct{}), failed: make(chan struct{}),
		reading: map[net.Conn]struct{}{},
	}
}

type passthroughListener struct {
	p      *Proxy
	ln     net.Listener
	ctx    context.Context // ends with Close: pending dials give up
	cancel context.CancelFunc
	ready  chan net.Conn // connections for the caller
	done   chan struct{} // closed by Close
	failed chan struct{} // closed when ln failed for good, with err set
	err    error
	start  sync.Once
	stop   sync.Once
	wg     sync.WaitGroup // the accept loop and the readers

	mu      sync.Mutex
	closed  bool
	reading map[net.Conn]struct{} // connections whose ClientHello is being read
}

// Accept returns the next connection that is not passed through.
func (l *passthroughListener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed {
			l.wg.Go(l.acceptLoop)
		}
	})
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.failed:
		return nil, l.err
	}
}

// Close stops accepting and closes the connections whose ClientHello is
// being read. It returns the error of closing the wrapped listener.
func (l *passthroughListener) Close() error {
	err := net.ErrClosed
	l.stop.Do(func() {
		l.mu.Lock()
		l.closed = true
		for c := range l.reading {
			_ = c.Close()
		}
		l.mu.Unlock()
		close(l.done)
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr is the wrapped listener's address.
func (l *passthroughListener) Addr() net.Addr { return l.ln.Addr() }

func (l *passthroughListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() {
				return
			}
			if retryableAccept(err) {
				delay = acceptBackoff(delay)
				l.p.log.Warn().Err(err).Str("addr", l.ln.Addr().String()).Dur("retry_in", delay).Msg("https accept failed")
				if !sleepCtx(l.ctx, delay) {
					return
				}
				continue
			}
			l.err = err
			close(l.failed)
			return
		}
		delay = 0
		if !l.track(c) {
			_ = c.Close()
			return
		}
		l.wg.Add(1) // done by route
		go l.route(c)
	}
}

// retryableAccept reports whether a failed Accept may succeed later.
func retryableAccept(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

func (l *passthroughListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// track records a connection being read; false means Close was called.
func (l *passthroughListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.reading[c] = struct{}{}
	return true
}

// untrack ends the read of c; false means Close was called, and closed c.
func (l *passthroughListener) untrack(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.reading, c)
	return !l.closed
}

// route reads the ClientHello of c, then hands c to Accept or passes it
// through. Close waits for the read and the hand-over, not for a
// passthrough connection: Shutdown does.
func (l *passthroughListener) route(c net.Conn) {
	svc, hello := l.read(c)
	l.wg.Done()
	if svc != nil {
		l.p.serveTCP(l.ctx, c, svc, hello, nil)
	}
}

// read reads the ClientHello of c and returns the passthrough service of
// its server name with the bytes read, or hands c to Accept and returns
// nil.
func (l *passthroughListener) read(c net.Conn) (*Service, []byte) {
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	name, hello, ok := readClientHello(c)
	_ = c.SetReadDeadline(time.Time{})
	if !l.untrack(c) {
		_ = c.Close()
		return nil, nil
	}
	if ok {
		if svc := l.p.loadTCPRoutes().passthrough(name); svc != nil {
			return svc, hello
		}
	}
	select {
	case l.ready <- &peekedConn{Conn: c, peeked: hello}:
	case <-l.done:
		_ = c.Close()
	}
	return nil, nil
}

// errHelloRead ends the handshake that readClientHello starts.
var errHelloRead = errors.New("client hello read")

// readClientHello reads c up to the end of a TLS ClientHello and returns
// its server name and every byte read. ok is false when c did not send a
// ClientHello within the read deadline and maxHello bytes.
//
// It lets crypto/tls parse the hello, records whatever the parser reads,
// and stops it in GetConfigForClient, before anything is sent to c.
func readClientHello(c net.Conn) (name string, read []byte, ok bool) {
	rc := &helloConn{r: io.LimitReader(c, maxHello), c: c}
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, ok = h.ServerName, true
		return nil, errHelloRead
	}}
	_ = tls.Server(rc, cfg).Handshake()
	return name, rc.read, ok
}

// helloConn is the read-only connection readClientHello hands to
// crypto/tls: it records what is read and drops what is written (the
// alert that ends the handshake).
type helloConn struct {
	r    io.Reader
	c    net.Conn
	read []byte
}

func (h *helloConn) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	h.read = append(h.read, b[:n]...)
	return n, err
}

func (h *helloConn) Write(b []byte) (int, error)      { return len(b), nil }
func (h *helloConn) Close() error                     { return nil }
func (h *helloConn) LocalAddr() net.Addr              { return h.c.LocalAddr() }
func (h *helloConn) RemoteAddr() net.Addr             { return h.c.RemoteAddr() }
func (h *helloConn) SetDeadline(time.Time) error      { return nil }
func (h *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (h *helloConn) SetWriteDeadline(time.Time) error { return nil }

// peekedConn is a connection whose first bytes were read already: Read
// returns them first.
type peekedConn struct {
	net.Conn
	peeked []byte
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(b, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
