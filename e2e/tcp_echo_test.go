package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpEcho is a TCP echo server on 127.0.0.1: it greets each connection
// with its name and a newline, then echoes what it reads. stop closes its
// listener (new connections are refused) and its open connections, as a
// process that exits does.
type tcpEcho struct {
	name     string
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	once     sync.Once
}

func newTCPEcho(t *testing.T, name string) *tcpEcho {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &tcpEcho{name: name, ln: ln, conns: map[net.Conn]struct{}{}}
	e.wg.Go(e.serve)
	t.Cleanup(e.stop)
	return e
}

func (e *tcpEcho) serve() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.accepted.Add(1)
		e.mu.Lock()
		e.conns[c] = struct{}{}
		e.mu.Unlock()
		e.wg.Go(func() {
			defer func() {
				e.mu.Lock()
				delete(e.conns, c)
				e.mu.Unlock()
				c.Close()
			}()
			if _, err := io.WriteString(c, e.name+"\n"); err == nil {
				_, _ = io.Copy(c, c)
			}
		})
	}
}

func (e *tcpEcho) stop() {
	e.once.Do(func() {
		e.ln.Close()
		e.mu.Lock()
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
}

// echoConn is a client connection through cutover to a tcpEcho.
type echoConn struct {
	c       net.Conn
	r       *bufio.Reader
	backend string
}

// errRefused marks a connection that cutover did not accept.
var errRefused = errors.New("cutover did not accept the connection")

// dialEchoVia connects to addr and reads the backend's greeting.
func dialEchoVia(addr string) (*echoConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	ec := &echoConn{c: c, r: bufio.NewReader(c)}
	line, err := ec.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	ec.backend = strings.TrimSuffix(line, "\n")
	return ec, nil
}

// roundTrip sends msg and reads it back.
func (ec *echoConn) roundTrip(msg []byte) error {
	if _, err := ec.c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(ec.r, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo differs")
	}
	return nil
}

// echoTrip is the outcome of one round trip on its own connection.
type echoTrip struct {
	dialed  time.Time // when the client began to connect
	backend string    // from the greeting; "" when none came
	refused bool      // cutover did not accept the connection
	err     error
}

// TestTCPEchoUnderLoadWithABackendStopped sends 8 workers × 200 round
// trips of 128 bytes through a TCP route to three echo backends, each round
// trip on a connection of its own (connect, greeting, 128 bytes there and
// back, close): connections, not requests, are what a TCP route balances.
// One backend is stopped after a quarter of the round trips: its listener
// closes (new dials are refused) and its open connections are cut, as when
// its process exits. Connections that began after the stop must all
// succeed on the two others, none refused by cutover; those that were
// open on the stopped backend, among them six long-lived ones held
// through the run, are cut, and are counted and reported apart.
func TestTCPEchoUnderLoadWithABackendStopped(t *testing.T) {
	const workers, perWorker, size = 8, 200, 128
	a, b, c := newTCPEcho(t, "a"), newTCPEcho(t, "b"), newTCPEcho(t, "c")
	_, port, _ := net.SplitHostPort(freeAddr(t))
	in := start(t, fmt.Sprintf(`
services:
  echo:
    protocol: tcp
    tcp.listen: %s
    backends: [%s, %s, %s]
`, port, a.ln.Addr(), b.ln.Addr(), c.ln.Addr()))
	addr := "127.0.0.1:" + port
	eventually(t, 10*time.Second, func() error {
		ec, err := dialEchoVia(addr)
		if err == nil {
			ec.c.Close()
		}
		return err
	})

	// Long-lived connections, two per backend with round robin.
	var held []*echoConn
	for range 6 {
		ec, err := dialEchoVia(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ec.c.Close()
		_ = ec.c.SetDeadline(time.Time{})
		held = append(held, ec)
	}

	trips := make([]echoTrip, 0, workers*perWorker)
	var mu sync.Mutex
	var done atomic.Int64
	stopAt := make(chan time.Time, 1)
	quarter := make(chan struct{})
	go func() {
		<-quarter
		b.stop()
		stopAt <- time.Now()
	}()
	var wg sync.WaitGroup
	began := time.Now()
	for range workers {
		wg.Go(func() {
			msg := make([]byte, size)
			for range perWorker {
				_, _ = rand.Read(msg)
				tr := echoTrip{dialed: time.Now()}
				ec, err := dialEchoVia(addr)
				switch {
				case err != nil:
					tr.err, tr.refused = err, errors.Is(err, errRefused)
				default:
					tr.backend = ec.backend
					tr.err = ec.roundTrip(msg)
					ec.c.Close()
				}
				mu.Lock()
				trips = append(trips, tr)
				mu.Unlock()
				if done.Add(1) == workers*perWorker/4 {
					close(quarter)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	stopped := <-stopAt

	var refused, cut, failedNew, okBefore, afterStop int
	before, after := map[string]int{}, map[string]int{}
	var failures []string
	for _, tr := range trips {
		isNew := !tr.dialed.Before(stopped)
		switch {
		case tr.refused:
			refused++
			failures = append(failures, tr.err.Error())
		case tr.err != nil && isNew:
			failedNew++
			failures = append(failures, fmt.Sprintf("%s: %v", tr.backend, tr.err))
		case tr.err != nil:
			cut++
		case isNew:
			afterStop++
			after[tr.backend]++
		default:
			okBefore++
			before[tr.backend]++
		}
	}
	heldCut, heldOK := 0, 0
	for _, ec := range held {
		_ = ec.c.SetDeadline(time.Now().Add(5 * time.Second))
		err := ec.roundTrip([]byte("still there?"))
		switch {
		case ec.backend == "b" && err == nil:
			t.Errorf("a connection to the stopped backend still works")
		case ec.backend == "b":
			heldCut++
		case err != nil:
			t.Errorf("a long-lived connection to %s failed: %v", ec.backend, err)
		default:
			heldOK++
		}
	}
	t.Logf("%d round trips of %d bytes on their own connections in %s (%.0f connections/s), 8 workers",
		len(trips), size, elapsed.Round(time.Millisecond), float64(len(trips))/elapsed.Seconds())
	t.Logf("before the stop: %v; after: %v (%d connections)", before, after, afterStop)
	t.Logf("cut: %d round trips open when b stopped, %d of 2 long-lived connections on b; %d long-lived on a and c unaffected",
		cut, heldCut, heldOK)
	t.Logf("backends accepted: a %d, b %d, c %d; cutover retries on another backend: %v; connect failures: %v",
		a.accepted.Load(), b.accepted.Load(), c.accepted.Load(),
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": "echo", "reason": "connect"}),
		metricValue(t, in, "cutover_tcp_connect_failures_total", map[string]string{"service": "echo"}))

	if refused != 0 || failedNew != 0 {
		t.Errorf("%d connections refused by cutover, %d failed round trips on connections made after the stop; first: %v",
			refused, failedNew, failures[:min(len(failures), 5)])
	}
	if after["b"] != 0 {
		t.Errorf("%d new connections reached the stopped backend", after["b"])
	}
	if afterStop < len(trips)/2 || after["a"] == 0 || after["c"] == 0 {
		t.Errorf("after the stop: %v; want most of the load on a and c", after)
	}
	if heldCut != 2 || heldOK != 4 {
		t.Errorf("long-lived connections: %d cut, %d fine; want b's 2 cut and the 4 others fine", heldCut, heldOK)
	}
	if got := metricValue(t, in, "cutover_tcp_connect_failures_total", map[string]string{"service": "echo"}); got != 0 {
		t.Errorf("cutover_tcp_connect_failures_total = %v, want 0", got)
	}
	// Every connection is counted: the readiness probe, the long-lived
	// ones and the load.
	want := float64(1 + len(held) + len(trips))
	if got := metricValue(t, in, "cutover_tcp_connections_total", map[string]string{"service": "echo"}); got != want {
		t.Errorf("cutover_tcp_connections_total = %v, want %v", got, want)
	}
	if got := metricValue(t, in, "cutover_tcp_bytes_total", map[string]string{"service": "echo", "direction": "in"}); got < float64(size*(afterStop+okBefore)) {
		t.Errorf("cutover_tcp_bytes_total{direction=in} = %v, want at least %d", got, size*(afterStop+okBefore))
	}
}
