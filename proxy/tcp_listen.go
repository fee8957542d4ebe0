package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

const (
	// tcpRetryInterval is how often RunTCP tries again to open a listener
	// that could not be opened (port in use).
	tcpRetryInterval = 5 * time.Second
	// tcpStopGrace is how long connections may go on after RunTCP's
	// context ends before they are closed. Shutdown gives them longer: see
	// RunTCP.
	tcpStopGrace = time.Second
	// tcpShutdownPoll is how often RunTCP looks whether Shutdown began.
	tcpShutdownPoll = 100 * time.Millisecond
)

// TCPListener is the state of the listener of one protocol tcp service.
type TCPListener struct {
	// Service is the service's name.
	Service string
	// Port is the service's tcp.listen port.
	Port int
	// Addr is the address listened on, or that could not be listened on.
	Addr string
	// Err says why the service has no listener: the port is in use, or
	// another service has it. Nil when it listens.
	Err error
}

// TCPListeners returns the state of the listeners of the services with
// tcp.listen, by service name, as of RunTCP's last look at the table; nil
// when RunTCP does not run. It is safe for concurrent use; the slice must
// not be changed.
func (p *Proxy) TCPListeners() []TCPListener {
	if l := p.tcp.listeners.Load(); l != nil {
		return *l
	}
	return nil
}

// RunTCP serves the services with protocol tcp and tcp.listen until ctx
// ends. It keeps one listener per service, on ":PORT" or on
// Config.TCPHost, and follows the table: it opens the listeners of new
// services and closes those of removed ones, whose established connections
// go on until they end or their backend drains (a backend that left the
// configuration drains). A port that cannot be opened (in use, or taken by
// another service) is logged, shown by TCPListeners and tried again every
// 5s; other services are not affected.
//
// Each connection goes to a backend that the service's balancer picks (see
// serveTCP). When Shutdown begins, RunTCP closes its listeners and the open
// connections get Shutdown's time like upgraded HTTP connections. When ctx
// ends, RunTCP closes its listeners, gives the connections still open one
// second, closes them and returns nil once every goroutine it started has
// ended.
func (p *Proxy) RunTCP(ctx context.Context) error {
	if !p.tcp.running.CompareAndSwap(false, true) {
		return errors.New("proxy: RunTCP called while another RunTCP is running")
	}
	defer p.tcp.running.Store(false)
	s := &tcpServer{p: p, ctx: ctx, open: map[int]*tcpListener{}, logged: map[string]string{}, kill: make(chan struct{})}
	retry := time.NewTicker(tcpRetryInterval)
	defer retry.Stop()
	poll := time.NewTicker(tcpShutdownPoll)
	defer poll.Stop()
	changed := p.tcpChanged()
	s.sync()
	for {
		select {
		case <-ctx.Done():
			s.stop()
			return nil
		case <-changed:
			changed = p.tcpChanged()
			s.sync()
		case <-retry.C:
			if s.failing {
				s.sync()
			}
		case <-poll.C:
			if !s.closing && p.shuttingDown() {
				s.closing = true
				s.sync()
			}
		}
	}
}

// shuttingDown reports whether Shutdown began.
func (p *Proxy) shuttingDown() bool {
	p.tunnels.mu.Lock()
	defer p.tunnels.mu.Unlock()
	return p.tunnels.closed
}

// tcpServer is one run of RunTCP. Its maps are owned by RunTCP's
// goroutine.
type tcpServer struct {
	p       *Proxy
	ctx     context.Context
	open    map[int]*tcpListener // by port
	logged  map[string]string    // service and port → the listener error last logged
	failing bool                 // a listener could not be opened: retry
	closing bool                 // Shutdown began: no listeners
	accepts sync.WaitGroup       // accept loops
	conns   sync.WaitGroup       // connections
	kill    chan struct{}        // closed when the connections' time is up
}

type tcpListener struct {
	ln      net.Listener
	addr    string
	service string // the service it was opened for, for logs
}

// sync makes the listeners match the current table.
func (s *tcpServer) sync() {
	r := s.p.loadTCPRoutes()
	for port, l := range s.open {
		if s.closing || r.ports[port] == nil {
			_ = l.ln.Close()
			delete(s.open, port)
			s.p.log.Info().Str("service", l.service).Str("addr", l.addr).Msg("tcp listener closed")
		}
	}
	if s.closing {
		s.p.tcp.listeners.Store(nil)
		return
	}
	states := make([]TCPListener, 0, len(r.listens))
	seen := make(map[string]bool, len(r.listens))
	s.failing = false
	for _, l := range r.listens {
		st := TCPListener{Service: l.svc.name, Port: l.port, Addr: s.addr(l.port)}
		switch {
		case l.takenBy != "":
			st.Err = fmt.Errorf("tcp.listen %d: the port is taken by service %s: give each service its own port", l.port, l.takenBy)
		case s.open[l.port] != nil:
			st.Addr = s.open[l.port].addr
		default:
			st.Addr, st.Err = s.listen(l)
			s.failing = s.failing || st.Err != nil
		}
		key := l.svc.name + "\x00" + strconv.Itoa(l.port)
		seen[key] = true
		s.report(key, st, l.takenBy == "")
		states = append(states, st)
	}
	for key := range s.logged {
		if !seen[key] {
			delete(s.logged, key)
		}
	}
	s.p.tcp.listeners.Store(&states)
}

func (s *tcpServer) addr(port int) string {
	return net.JoinHostPort(s.p.cfg.TCPHost, strconv.Itoa(port))
}

// report logs a listener error once, until it changes. retried says
// whether RunTCP tries the port again by itself.
func (s *tcpServer) report(key string, st TCPListener, retried bool) {
	msg := ""
	if st.Err != nil {
		msg = st.Err.Error()
	}
	if s.logged[key] == msg {
		return
	}
	s.logged[key] = msg
	if st.Err == nil {
		return
	}
	e := s.p.log.Error().Err(st.Err).Str("service", st.Service).Str("addr", st.Addr)
	if !retried {
		e.Msg("tcp listener not opened: the service gets no connections")
		return
	}
	e.Msg("tcp listener cannot be opened: the service gets no connections until the port is free; retrying every 5s")
}

// listen opens the listener of l and starts its accept loop.
func (s *tcpServer) listen(l tcpListen) (string, error) {
	addr := s.addr(l.port)
	var lc net.ListenConfig
	ln, err := lc.Listen(s.ctx, "tcp", addr)
	if err != nil {
		return addr, err
	}
	tl := &tcpListener{ln: ln, addr: ln.Addr().String(), service: l.svc.name}
	s.open[l.port] = tl
	s.accepts.Go(func() { s.accept(tl, l.port) })
	s.p.log.Info().Str("service", l.svc.name).Str("addr", tl.addr).Msg("tcp listener open")
	return tl.addr, nil
}

// accept serves the connections of one listener until it is closed. Each
// connection goes to the service that has the port in the table of the
// moment.
func (s *tcpServer) accept(l *tcpListener, port int) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as
			// net/http.Server does.
			delay = acceptBackoff(delay)
			s.p.log.Warn().Err(err).Str("addr", l.addr).Dur("retry_in", delay).Msg("tcp accept failed")
			if !sleepCtx(s.ctx, delay) {
				return
			}
			continue
		}
		delay = 0
		svc := s.p.loadTCPRoutes().ports[port]
		if svc == nil {
			_ = c.Close()
			continue
		}
		s.conns.Go(func() { s.p.serveTCP(s.ctx, c, svc, nil, s.kill) })
	}
}

// stop closes the listeners, waits for the accept loops, gives the
// connections tcpStopGrace, then closes them and waits for them.
func (s *tcpServer) stop() {
	s.closing = true
	s.sync()
	s.accepts.Wait()
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	grace := time.NewTimer(tcpStopGrace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	close(s.kill)
	<-done
}

// acceptBackoff is the wait after a failed Accept: 5ms, doubling up to 1s.
func acceptBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// sleepCtx waits for d or until ctx ends; false means ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
