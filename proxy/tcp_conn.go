package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutoverproxy/cutover/balancer"
	"github.com/cutoverproxy/cutover/proxy/relay"
)

// tcpChunk is the most one splice moves before the byte counters are
// updated: a long transfer shows in cutover_tcp_bytes_total as it goes,
// not only when its connection ends.
const tcpChunk = 256 << 10

// serveTCP forwards a client connection to a backend of svc. hello holds
// bytes already read from the client (a TLS ClientHello), sent to the
// backend first. The connection lasts until both sides have closed, no
// byte went through for the service's idle timeout, the backend has
// drained for Config.DrainGrace, Shutdown's time is up, or kill is
// closed. serveTCP closes client.
//
// The per-connection path takes one lock, Shutdown's registration of the
// connection (as for upgraded HTTP connections), and otherwise only reads
// the current table and atomics.
func (p *Proxy) serveTCP(ctx context.Context, client net.Conn, svc *Service, hello []byte, kill <-chan struct{}) {
	defer client.Close()
	st := svc.stats
	st.tcpConns.Add(1)
	expired, ok := p.tunnels.add()
	if !ok {
		return // Shutdown began
	}
	defer p.tunnels.done()
	st.tcpActive.Add(1)
	defer st.tcpActive.Add(-1)
	b, back, err := p.connectTCP(ctx, svc, client, hello)
	if err != nil {
		st.tcpFailures.Add(1)
		if ctx.Err() == nil {
			p.logTCPFailure(svc, client, err)
		}
		return
	}
	defer b.inflight.Add(-1)
	defer back.Close()
	st.tcpIn.Add(uint64(len(hello)))
	idle := svc.config.Options.TCP.IdleTimeout
	if why := relayTCP(client, back, b, st, idle, p.cfg.DrainGrace, expired, kill); why != "" {
		p.log.Debug().Str("service", svc.name).Str("backend", b.Name()).Str("client", client.RemoteAddr().String()).
			Str("reason", why).Msg("closed tcp connection")
	}
}

// connectTCP connects to a backend that the service's balancer picks,
// with the client's address as the request's for hash:source, and sends
// it the PROXY protocol header, if any, and hello. A backend that cannot
// be connected to is not tried again: the next attempt goes to another
// one, up to Config.Attempts. The backend counts the connection in flight
// until the caller's b.inflight.Add(-1).
func (p *Proxy) connectTCP(ctx context.Context, svc *Service, client net.Conn, hello []byte) (*Backend, net.Conn, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return nil, nil, err
	}
	r.RemoteAddr = client.RemoteAddr().String()
	ex := exchange{start: time.Now(), r: r, svc: svc}
	preface := proxyHeader(svc.config.Options.TCP.ProxyProtocol, client.RemoteAddr(), client.LocalAddr())
	preface = append(preface, hello...)
	var tried balancer.Tried
	err = errNoBackend
	for attempt := 0; attempt < p.cfg.Attempts; attempt++ {
		i := p.pick(&ex, tried)
		if i < 0 && attempt == 0 && p.waitHeld(&ex) {
			i = p.pick(&ex, 0)
		}
		if i < 0 {
			break
		}
		tried = tried.Add(i)
		if attempt > 0 {
			ex.svc.stats.retries[retryConnect].Add(1)
		}
		b := ex.svc.backends[i]
		back, derr := p.dialTCP(ctx, b, preface)
		if derr == nil {
			return b, back, nil
		}
		err = derr
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, err
}

// dialTCP connects to b and writes preface. For passive outlier detection
// a failure counts against the backend and a connection for it.
func (p *Proxy) dialTCP(ctx context.Context, b *Backend, preface []byte) (net.Conn, error) {
	b.inflight.Add(1)
	b.requests.Add(1)
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", b.addr)
	if err == nil && len(preface) > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(p.cfg.DialTimeout))
		if _, err = c.Write(preface); err == nil {
			err = c.SetWriteDeadline(time.Time{})
		}
		if err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		b.inflight.Add(-1)
		err = &dialError{err}
		if ctx.Err() == nil {
			b.recordError(err)
			b.failed(err.Error(), err)
		}
		return nil, err
	}
	b.succeeded()
	return c, nil
}

// relayTCP copies bytes both ways: "in" from the client to the backend,
// "out" back. When a side ends its sending cleanly, the other side's
// sending half is closed (CloseWrite) and the other direction goes on; an
// error in either direction closes both connections. When idle is not
// zero, a connection on which no byte was written, either way, for idle
// (to idle and a quarter, and a wake-up's delay) is closed: a client or a
// backend that vanished without a word, or one that stopped reading while
// the other writes. It returns when both directions have ended, with why
// the proxy closed the connection, or "" when a side did.
//
// Between two TCP connections the bytes move on an event loop of package
// relay (a read and a write per message, no goroutine woken); otherwise
// (or when the system refuses relay a descriptor) on two goroutines.
func relayTCP(client, back net.Conn, b *Backend, st *serviceStats, idle, grace time.Duration, expired, kill <-chan struct{}) string {
	var r tcpRelay
	if pair, ok := relay.Start(client, back, &st.tcpIn, &st.tcpOut); ok {
		r = pair
	} else {
		r = copyBoth(client, back, st, idle == 0)
	}
	defer r.Close()
	end := func(why string) string {
		r.Close()
		<-r.Done()
		return why
	}
	drained := b.drainNotify()
	var timer *time.Timer
	var graceOver <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	check := newIdleCheck(idle)
	defer check.stop()
	for {
		select {
		case <-r.Done():
			return ""
		case <-check.C():
			if check.expired(r.Moved()) {
				st.tcpIdle.Add(1)
				return end("idle")
			}
		case <-expired:
			return end("shutdown")
		case <-kill:
			return end("shutdown")
		case <-drained:
			timer = time.NewTimer(grace)
			drained, graceOver = nil, timer.C
		case <-graceOver:
			graceOver = nil
			if !b.draining() {
				// Back in service (unpaused): wait for the next drain.
				drained = b.drainNotify()
				continue
			}
			return end("drained")
		}
	}
}

// idleCheck is relayTCP's idle timeout: it looks at the relay's Moved
// every quarter of the timeout, and once more when the timeout has passed
// since it last saw Moved change. A nil idleCheck never expires.
type idleCheck struct {
	idle  time.Duration
	timer *time.Timer
	moved uint64
	since time.Time // when the check last saw moved change
}

// newIdleCheck returns the check of timeout idle, or nil for none.
func newIdleCheck(idle time.Duration) *idleCheck {
	if idle <= 0 {
		return nil
	}
	return &idleCheck{idle: idle, timer: time.NewTimer(idle / 4), since: time.Now()}
}

// C fires when the check is due; never for a nil check.
func (c *idleCheck) C() <-chan time.Time {
	if c == nil {
		return nil
	}
	return c.timer.C
}

// expired is the check, once C fired, with the relay's count of bytes
// moved: it reports whether the timeout passed with no change, or sets
// the next check.
func (c *idleCheck) expired(moved uint64) bool {
	now := time.Now()
	quiet := now.Sub(c.since)
	switch {
	case moved != c.moved:
		c.moved, c.since, quiet = moved, now, 0
	case quiet >= c.idle:
		return true
	}
	c.timer.Reset(min(c.idle/4, c.idle-quiet))
	return false
}

func (c *idleCheck) stop() {
	if c != nil {
		c.timer.Stop()
	}
}

// tcpRelay is a relayed connection: Done is closed when both directions
// have ended, Close ends both at once, Moved counts the bytes written
// both ways.
type tcpRelay interface {
	Done() <-chan struct{}
	Close()
	Moved() uint64
}

// goRelay is a tcpRelay on two goroutines, one per direction.
type goRelay struct {
	client, back net.Conn
	done         chan struct{}
	left         atomic.Int32 // directions still copying
	moved        atomic.Uint64
	splice       bool // bulk transfers may go by splice
}

// copyBoth starts copying both ways on goroutines. Without splice, every
// write counts in Moved when it returns; a splice counts when its chunk
// of tcpChunk is done, too late for an idle timeout. (A write waits for
// a slow reader too, but for at most a buffer of 8 KiB: a reader that
// takes less than that in a whole timeout counts as idle here.)
func copyBoth(client, back net.Conn, st *serviceStats, splice bool) *goRelay {
	g := &goRelay{client: client, back: back, done: make(chan struct{}), splice: splice}
	g.left.Store(2)
	go g.copy(back, client, &st.tcpIn)
	go g.copy(client, back, &st.tcpOut)
	return g
}

// copy copies one direction; a clean end closes dst's sending half, an
// error closes both connections.
func (g *goRelay) copy(dst, src net.Conn, n *atomic.Uint64) {
	if err := copyCounted(dst, src, counters{n, &g.moved}, g.splice); err != nil {
		g.Close()
	} else {
		closeWrite(dst)
	}
	if g.left.Add(-1) == 0 {
		close(g.done)
	}
}

func (g *goRelay) Done() <-chan struct{} { return g.done }

func (g *goRelay) Moved() uint64 { return g.moved.Load() }

func (g *goRelay) Close() {
	_ = g.client.Close()
	_ = g.back.Close()
}

// counters are the two a copy adds its bytes to: the service's, for
// one direction, and the connection's, for both.
type counters [2]*atomic.Uint64

func (c counters) add(n int) {
	c[0].Add(uint64(n))
	c[1].Add(uint64(n))
}

// copyCounted copies src to dst until src ends, adding the bytes copied
// to n as it goes. It starts with reads and writes through a buffer: the
// small messages of request-response protocols (databases, brokers) cost
// fewer system calls that way than through splice's pipe. Once a read
// fills the buffer the transfer is bulk, and, when splice allows, the
// rest goes by splice (see spliceCounted), as HAProxy's splice-auto does.
func copyCounted(dst, src net.Conn, n counters, splice bool) error {
	bp := tcpBuffers.Get().(*[]byte)
	defer tcpBuffers.Put(bp)
	buf := *bp
	for {
		r, err := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n.add(w)
			if werr != nil {
				return werr
			}
			if r == len(buf) && splice {
				return spliceCounted(dst, src, n)
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// tcpBuffers are the buffers of copyCounted.
var tcpBuffers = sync.Pool{New: func() any {
	b := make([]byte, 8<<10)
	return &b
}}

// spliceCounted is copyCounted for bulk transfers. Between two
// *net.TCPConn, io.CopyN ends in TCPConn.ReadFrom with an io.LimitedReader
// over a TCPConn, which Linux serves with splice: the bytes do not pass
// through user space.
func spliceCounted(dst, src net.Conn, n counters) error {
	for {
		w, err := io.CopyN(dst, src, tcpChunk)
		n.add(int(w))
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// closeWrite closes the sending half of c, or c when it has no halves.
func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
		return
	}
	_ = c.Close()
}

// logTCPFailure logs a connection that reached no backend, at most once a
// second per service; the line says how many were left out.
func (p *Proxy) logTCPFailure(svc *Service, client net.Conn, err error) {
	st := svc.stats
	now := time.Now().UnixNano()
	last := st.lastFailLog.Load()
	if now-last < int64(time.Second) || !st.lastFailLog.CompareAndSwap(last, now) {
		st.suppressed.Add(1)
		return
	}
	e := p.log.Warn().Str("service", svc.name).Str("client", client.RemoteAddr().String())
	if n := st.suppressed.Swap(0); n > 0 {
		e = e.Int64("similar_not_logged", n)
	}
	if errors.Is(err, errNoBackend) {
		e.Msg("tcp connection closed: the service has no available backend")
		return
	}
	e.Err(err).Msg("tcp connection closed: no backend could be reached")
}
