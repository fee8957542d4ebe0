package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons in the close frames that the proxy sends.
const (
	reasonDrained  = "cutover: backend draining"
	reasonShutdown = "cutover: shutting down"
)

// tunnels tracks upgraded connections (WebSockets and others), which
// http.Server.Shutdown neither waits for nor closes.
//
// Every tunnel watches expired itself and ends within a bounded time once
// it is closed, so Shutdown needs no list of connections: a tunnel must
// never block on its connections without a deadline before its watch
// starts.
type tunnels struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	expired chan struct{} // closed when Shutdown's time is up; see expiredLocked
	expire  sync.Once
}

// add registers a tunnel and returns the channel that tells it to close
// because the proxy shuts down; false means the proxy is shutting down
// and the tunnel must not start. done unregisters it.
func (t *tunnels) add() (<-chan struct{}, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false
	}
	t.wg.Add(1)
	return t.expiredLocked(), true
}

func (t *tunnels) done() { t.wg.Done() }

func (t *tunnels) expiredLocked() chan struct{} {
	if t.expired == nil {
		t.expired = make(chan struct{})
	}
	return t.expired
}

// Shutdown refuses new upgrades and waits for the open tunnels to end
// until ctx is done. Then it closes those left, WebSockets with a close
// frame 1001 (going away) to both ends, and waits for them to wind down,
// which takes about Config.CloseWait more at most.
func (p *Proxy) Shutdown(ctx context.Context) error {
	t := &p.tunnels
	t.mu.Lock()
	t.closed = true
	expired := t.expiredLocked()
	t.mu.Unlock()
	ended := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	t.expire.Do(func() { close(expired) })
	<-ended
	return ctx.Err()
}

// closeReason says why a tunnel ended, for cutover_upgraded_closed_total.
type closeReason uint8

const (
	closedDrained  closeReason = iota // the backend drained and the grace ran out
	closedShutdown                    // the proxy shut down
	closedClient                      // the client closed first
	closedBackend                     // the backend closed first
)

var closeReasons = [...]string{"drained", "shutdown", "client", "backend"}

// peer is the other side of a tunnel: the backend for the client, the
// client for the backend.
func (r closeReason) peer() closeReason {
	if r == closedClient {
		return closedBackend
	}
	return closedClient
}

// setReason records r in by unless a reason is there already: the first
// to end a tunnel names it.
func setReason(by *atomic.Uint32, r closeReason) { by.CompareAndSwap(0, uint32(r)+1) }

// drainBits are the states in which a backend's tunnels get the drain
// grace and are then closed.
const drainBits = outDraining | outDeployDrain | outRemoved

// drainSignal lets each tunnel wait for its backend to drain on a channel,
// not by polling the backend's state: ch is closed when the backend enters
// a drain state and replaced by an open channel when it leaves it (a
// paused container that is unpaused). setBits syncs it on those
// transitions only, so the request path never touches it.
type drainSignal struct {
	mu     sync.Mutex
	ch     chan struct{}
	closed bool
}

// drainNotify returns a channel that is closed when the backend drains; it
// is closed already when the backend is draining.
func (b *Backend) drainNotify() <-chan struct{} { return b.syncDrain() }

// syncDrain makes the drain channel agree with the backend's state, which
// it reads under the lock: whatever the order in which concurrent setBits
// calls get here, the last one leaves the channel right.
func (b *Backend) syncDrain() <-chan struct{} {
	d := &b.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	draining := b.out.Load()&drainBits != 0
	switch {
	case draining && !d.closed:
		close(d.ch)
		d.closed = true
	case !draining && d.closed:
		d.ch, d.closed = make(chan struct{}), false
	}
	return d.ch
}

// draining reports whether the backend is in a drain state.
func (b *Backend) draining() bool { return b.out.Load()&drainBits != 0 }

// tunnel is one upgraded connection: the client's and the backend's
// connections and a pipe for each direction.
type tunnel struct {
	backend *Backend
	client  net.Conn
	back    io.ReadWriteCloser
	ws      bool
	up      *pipe // client to backend
	down    *pipe // backend to client
	by      atomic.Uint32
}

// newTunnel joins the client (whose buffered reader may hold bytes sent
// after the request) and the backend.
func newTunnel(b *Backend, client net.Conn, clientReader *bufio.Reader, back io.ReadWriteCloser, ws bool) *tunnel {
	tn := &tunnel{backend: b, client: client, back: back, ws: ws}
	tn.up = newPipe(clientReader, back, ws, closedClient, &tn.by)
	tn.down = newPipe(back, client, ws, closedBackend, &tn.by)
	return tn
}

// run copies both ways until one side closes, the backend has drained
// for grace, or expired is closed (the proxy shuts down). It returns when
// both connections are closed, with the reason the tunnel ended. A
// WebSocket that the proxy ends gets closeWait for its close handshake.
func (tn *tunnel) run(grace, closeWait time.Duration, expired <-chan struct{}) closeReason {
	go tn.up.run()
	go tn.down.run()
	drained := tn.backend.drainNotify()
	var timer *time.Timer
	var graceOver <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-tn.up.ended:
			return tn.end(closedClient)
		case <-tn.down.ended:
			return tn.end(closedBackend)
		case <-expired:
			return tn.shut(closedShutdown, reasonShutdown, closeWait)
		case <-drained:
			if timer == nil {
				timer = time.NewTimer(grace)
			} else {
				timer.Reset(grace)
			}
			drained, graceOver = nil, timer.C
		case <-graceOver:
			if tn.backend.draining() {
				return tn.shut(closedDrained, reasonDrained, closeWait)
			}
			// Back in service (unpaused): wait for the next drain.
			drained, graceOver = tn.backend.drainNotify(), nil
		}
	}
}

// end closes both connections after one side ended.
func (tn *tunnel) end(r closeReason) closeReason {
	setReason(&tn.by, r)
	tn.closeConns()
	<-tn.up.ended
	<-tn.down.ended
	return closeReason(tn.by.Load() - 1)
}

// shut ends a tunnel that both sides still use. A WebSocket gets a close
// frame 1001 at the next frame boundary in each direction, and the peers'
// close frames are awaited, for closeWait in all; other protocols are
// closed at once.
func (tn *tunnel) shut(r closeReason, reason string, closeWait time.Duration) closeReason {
	setReason(&tn.by, r)
	if tn.ws {
		force := time.AfterFunc(closeWait, tn.closeConns)
		// A stop waits for a write in progress, which a peer that does
		// not read holds until force: the other direction's must not.
		go tn.down.stop(closeFrame(closeGoingAway, reason, false))
		tn.up.stop(closeFrame(closeGoingAway, reason, true))
		<-tn.up.closed
		<-tn.down.closed
		force.Stop()
	}
	return tn.end(r)
}

func (tn *tunnel) closeConns() {
	_ = tn.client.Close()
	_ = tn.back.Close()
}
