package e2e

import (
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

// newTCPEcho starts a TCP echo server on 127.0.0.1: it greets each
// connection with name and a newline, then echoes what it reads.
func newTCPEcho(t *testing.T, name string) *connServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveConns(t, ln, func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err == nil {
			_, _ = io.Copy(c, c)
		}
	})
}

// startTCPEcho starts cutover with a TCP service "echo" on a free port,
// to backends, with the service key line extra if not empty. It returns
// cutover and the service's address.
func startTCPEcho(t *testing.T, extra string, backends ...*connServer) (*instance, string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	addrs := make([]string, len(backends))
	for i, b := range backends {
		addrs[i] = b.ln.Addr().String()
	}
	yaml := fmt.Sprintf("services:\n  echo:\n    protocol: tcp\n    tcp.listen: %s\n    backends: [%s]\n",
		port, strings.Join(addrs, ", "))
	if extra != "" {
		yaml += "    " + extra + "\n"
	}
	return start(t, yaml), "127.0.0.1:" + port
}

// errRefused marks a connection that cutover did not accept.
var errRefused = errors.New("cutover did not accept the connection")

// dialEchoVia connects to addr and reads the backend's greeting, its
// name.
func dialEchoVia(addr string) (*greetedConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	return readGreeting(c)
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
	in, addr := startTCPEcho(t, "", a, b, c)
	eventually(t, 10*time.Second, func() error {
		ec, err := dialEchoVia(addr)
		if err == nil {
			ec.c.Close()
		}
		return err
	})

	// Long-lived connections, two per backend with round robin.
	var held []*greetedConn
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
					tr.backend = ec.greeting
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
		case ec.greeting == "b" && err == nil:
			t.Errorf("a connection to the stopped backend still works")
		case ec.greeting == "b":
			heldCut++
		case err != nil:
			t.Errorf("a long-lived connection to %s failed: %v", ec.greeting, err)
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

// TestTCPIdleTimeout runs cutover with a TCP service whose
// tcp.idle-timeout is 1s (the least it takes), from its configuration
// file: a connection that goes quiet is closed once that time passed
// without a byte, one that talks more often stays, and Prometheus' text
// shows the closed one.
func TestTCPIdleTimeout(t *testing.T) {
	const idle = time.Second
	in, addr := startTCPEcho(t, fmt.Sprintf("tcp.idle-timeout: %s", idle), newTCPEcho(t, "a"))
	assertIdleTimeout(t, addr, idle)
	if got := metricValue(t, in, "cutover_tcp_idle_closed_total", map[string]string{"service": "echo"}); got != 1 {
		t.Errorf("cutover_tcp_idle_closed_total = %v, want 1", got)
	}
}

// assertIdleTimeout checks the idle timeout idle of the TCP echo service
// at addr: of two connections, the one that goes quiet is closed once idle
// passed without a byte (not before), and the one that talks every eighth
// of it stays open through three timeouts.
func assertIdleTimeout(t *testing.T, addr string, idle time.Duration) {
	t.Helper()
	var quiet *greetedConn
	eventually(t, 10*time.Second, func() error {
		var err error
		quiet, err = dialEchoVia(addr)
		return err
	})
	defer quiet.c.Close()
	if err := quiet.roundTrip([]byte("then nothing")); err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	talking, err := dialEchoVia(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer talking.c.Close()
	closed := make(chan time.Time, 1)
	go func() {
		_, _ = quiet.r.ReadByte()
		closed <- time.Now()
	}()
	for range 3 * 8 { // three timeouts, a message every eighth
		time.Sleep(idle / 8)
		if err := talking.roundTrip([]byte("still here")); err != nil {
			t.Fatalf("a connection that talks was cut: %v", err)
		}
	}
	select {
	case at := <-closed:
		t.Logf("the quiet connection closed %s after its last byte", at.Sub(last).Round(time.Millisecond))
		if at.Sub(last) < idle {
			t.Errorf("closed before the %s timeout", idle)
		}
	default:
		t.Fatalf("the quiet connection is still open %s after its last byte", time.Since(last))
	}
}
