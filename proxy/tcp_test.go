package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// waitMetric waits until the series has the value want.
func (h *harness) waitMetric(want float64, name string, labels ...string) {
	h.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got := h.metric(name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTCPBalancesConnections(t *testing.T) {
	a, b, c := newEchoServer(t, "a"), newEchoServer(t, "b"), newEchoServer(t, "c")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint(), b.endpoint(), c.endpoint())))
	h.runTCP()
	h.waitListening("echo")

	const conns, msg = 30, "hello, backend"
	counts := map[string]int{}
	for range conns {
		tc := dialEcho(t, port)
		if err := tc.roundTrip(msg); err != nil {
			t.Fatal(err)
		}
		counts[tc.backend]++
		tc.c.Close()
	}
	for _, name := range []string{"a", "b", "c"} {
		if counts[name] != conns/3 {
			t.Errorf("round robin: %v, want %d connections each", counts, conns/3)
			break
		}
	}

	// Once every connection has ended, the counters are exact.
	h.waitMetric(0, "cutover_tcp_active_connections", "service", "echo")
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cutover_tcp_connections_total", []string{"service", "echo"}, conns},
		{"cutover_tcp_bytes_total", []string{"service", "echo", "direction", "in"}, float64(conns * len(msg))},
		{"cutover_tcp_bytes_total", []string{"service", "echo", "direction", "out"}, float64(conns * (len(msg) + len("a\n")))},
		{"cutover_tcp_connect_failures_total", []string{"service", "echo"}, 0},
		{"cutover_tcp_listener_up", []string{"service", "echo"}, 1},
	} {
		if got := h.metric(m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	for _, be := range h.p.Table().Service("echo").Backends() {
		if be.InFlight() != 0 || be.Requests() != conns/3 {
			t.Errorf("backend %s: %d in flight, %d connections; want 0 and %d", be.Name(), be.InFlight(), be.Requests(), conns/3)
		}
	}
	h.noWarnings()
}

func TestTCPInFlightWhileOpen(t *testing.T) {
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint())))
	h.runTCP()
	h.waitListening("echo")
	tc := dialEcho(t, port)
	if got := h.p.Backend("echo", "a").InFlight(); got != 1 {
		t.Errorf("in flight with one open connection: %d, want 1", got)
	}
	h.waitMetric(1, "cutover_tcp_active_connections", "service", "echo")
	tc.c.Close()
	h.waitMetric(0, "cutover_tcp_active_connections", "service", "echo")
	if got := h.p.Backend("echo", "a").InFlight(); got != 0 {
		t.Errorf("in flight after close: %d, want 0", got)
	}
}

func TestTCPHalfClose(t *testing.T) {
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint())))
	h.runTCP()
	h.waitListening("echo")
	tc := dialEcho(t, port)
	// The client sends, then closes its sending half: the echo server
	// sees EOF only through the proxy's CloseWrite, and its answer still
	// comes back.
	if _, err := io.WriteString(tc.c, "last words"); err != nil {
		t.Fatal(err)
	}
	if err := tc.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(tc.r)
	if err != nil || string(rest) != "last words" {
		t.Fatalf("after half-close: %q, %v; want the echo and EOF", rest, err)
	}
}

func TestTCPFailoverToAnotherBackend(t *testing.T) {
	ok := newEchoServer(t, "ok")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	refused1, refused2 := addrEndpoint("refused1", refusedAddr(t)), addrEndpoint("refused2", refusedAddr(t))
	h.p.Update(snapshot(tcpService("echo", port, refused1, ok.endpoint(), refused2)))
	h.runTCP()
	h.waitListening("echo")
	for i := range 9 {
		tc := dialEcho(t, port)
		if tc.backend != "ok" {
			t.Fatalf("connection %d went to %q", i, tc.backend)
		}
		if err := tc.roundTrip("ping"); err != nil {
			t.Fatal(err)
		}
		tc.c.Close()
	}
	if h.metric("cutover_tcp_connect_failures_total", "service", "echo") != 0 {
		t.Error("a connection failed")
	}
	if h.retries("echo") == 0 {
		t.Error("no retry counted")
	}
	for _, id := range []string{"refused1", "refused2"} {
		if b := h.p.Backend("echo", id); b.Failures() == 0 {
			t.Errorf("backend %s: no failure recorded for passive outlier detection", id)
		}
	}
}

func TestTCPNeverTriesABackendTwice(t *testing.T) {
	h := newHarness(t, Config{TCPHost: "127.0.0.1", Attempts: 5})
	port := freePort(t)
	var eps []discovery.Endpoint
	for i := range 3 {
		eps = append(eps, addrEndpoint("r"+strconv.Itoa(i), refusedAddr(t)))
	}
	h.p.Update(snapshot(tcpService("echo", port, eps...)))
	h.runTCP()
	h.waitListening("echo")
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read: %d, %v; want the connection closed", n, err)
	}
	h.waitMetric(1, "cutover_tcp_connect_failures_total", "service", "echo")
	for _, ep := range eps {
		if n := h.p.Backend("echo", ep.ID).Requests(); n != 1 {
			t.Errorf("backend %s tried %d times, want 1", ep.ID, n)
		}
	}
	if !strings.Contains(h.logs.String(), "tcp connection closed: no backend could be reached") {
		t.Errorf("no log line for the failed connection:\n%s", h.logs)
	}
}

func TestTCPHashSourceKeepsClientOnOneBackend(t *testing.T) {
	a, b, c := newEchoServer(t, "a"), newEchoServer(t, "b"), newEchoServer(t, "c")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	svc := tcpService("echo", port, a.endpoint(), b.endpoint(), c.endpoint())
	svc.Options.Balance = discovery.Balance{Policy: discovery.HashSource}
	h.p.Update(snapshot(svc))
	h.runTCP()
	h.waitListening("echo")
	seen := map[string]bool{}
	for range 12 {
		tc := dialEcho(t, port)
		seen[tc.backend] = true
		tc.c.Close()
	}
	if len(seen) != 1 {
		t.Errorf("one client address reached %v, want one backend", seen)
	}
}

func TestTCPDrainGraceThenClose(t *testing.T) {
	a, b := newEchoServer(t, "a"), newEchoServer(t, "b")
	const grace = 300 * time.Millisecond
	h := newHarness(t, Config{TCPHost: "127.0.0.1", DrainGrace: grace})
	port := freePort(t)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint(), b.endpoint())))
	h.runTCP()
	h.waitListening("echo")
	conns := map[string]*tcpClient{}
	for len(conns) < 2 {
		tc := dialEcho(t, port)
		conns[tc.backend] = tc
	}

	drainA := a.endpoint()
	drainA.State = discovery.Draining
	// The grace starts within Update, when the connection hears of the
	// drain: timed from before it.
	drained := time.Now()
	h.p.Update(snapshot(tcpService("echo", port, drainA, b.endpoint())))
	// New connections go to b; a's connection still works for a while.
	for range 4 {
		if tc := dialEcho(t, port); tc.backend != "b" {
			t.Errorf("new connection went to draining backend %s", tc.backend)
		}
	}
	if err := conns["a"].roundTrip("still here"); err != nil {
		t.Fatalf("draining backend's connection cut before the grace: %v", err)
	}
	// Then it is closed.
	n, err := conns["a"].r.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("read on drained connection: %d, %v; want it closed", n, err)
	}
	if since := time.Since(drained); since < grace {
		t.Errorf("closed after %s, before the %s grace", since, grace)
	}
	if err := conns["b"].roundTrip("unaffected"); err != nil {
		t.Errorf("connection to b: %v", err)
	}
	if !eventuallyTrue(func() bool { return h.p.Backend("echo", "a").InFlight() == 0 }) {
		t.Error("drained backend still counts its connection in flight")
	}
}

func TestTCPDeployDrainClosesAfterGrace(t *testing.T) {
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1", DrainGrace: 50 * time.Millisecond})
	port := freePort(t)
	ep := discovery.Endpoint{ID: "c0ffee:5432", Name: "db-1", Address: a.addr(), Weight: 1}
	h.p.Update(snapshot(tcpService("db", port, ep)))
	h.runTCP()
	h.waitListening("db")
	tc := dialEcho(t, port)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Drain waits for in-flight work: the TCP connection, closed after
	// the grace.
	if left := h.p.Drain(ctx, "db", "c0ffee"); left != 0 {
		t.Fatalf("drain: %d left", left)
	}
	if _, err := tc.r.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection open after the deploy drained its backend")
	}
}

func eventuallyTrue(f func() bool) bool {
	deadline := time.Now().Add(testTimeout)
	for !f() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func TestTCPListenerOfRemovedServiceClosed(t *testing.T) {
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port, other := freePort(t), freePort(t)
	h.p.Update(snapshot(tcpService("gone", port, a.endpoint()), tcpService("stays", other, a.endpoint())))
	h.runTCP()
	h.waitListening("gone")
	h.waitListening("stays")
	tc := dialEcho(t, port)

	h.p.Update(snapshot(tcpService("stays", other, a.endpoint())))
	h.waitListeners(func(ls []TCPListener) bool { return len(ls) == 1 && ls[0].Service == "stays" })
	_, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial removed service's port: %v, want connection refused", err)
	}
	// The established connection goes on (its backend drains for 30s).
	if err := tc.roundTrip("after removal"); err != nil {
		t.Errorf("established connection after its service left: %v", err)
	}
	dialEcho(t, other).c.Close()
	if got := h.metric("cutover_tcp_listener_up", "service", "gone"); got != -1 {
		t.Errorf("listener series of the removed service: %v, want none", got)
	}
}

func TestTCPPortInUseIsReported(t *testing.T) {
	a := newEchoServer(t, "a")
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	busy := blocker.Addr().(*net.TCPAddr).Port
	free := freePort(t)
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	snap := snapshot(tcpService("blocked", busy, a.endpoint()), tcpService("fine", free, a.endpoint()),
		tcpService("late", free, a.endpoint()))
	h.p.Update(snap)
	h.runTCP()
	ls := h.waitListeners(func(ls []TCPListener) bool { return len(ls) == 3 })
	for _, l := range ls {
		switch l.Service {
		case "blocked":
			if l.Err == nil || !strings.Contains(l.Err.Error(), "address already in use") {
				t.Errorf("blocked: %v, want address already in use", l.Err)
			}
		case "late":
			if l.Err == nil || !strings.Contains(l.Err.Error(), "taken by service fine") {
				t.Errorf("late: %v, want taken by service fine", l.Err)
			}
		case "fine":
			if l.Err != nil {
				t.Errorf("fine: %v", l.Err)
			}
		}
	}
	dialEcho(t, free).c.Close() // the other service is served
	if got := h.metric("cutover_tcp_listener_up", "service", "blocked"); got != 0 {
		t.Errorf("listener up of the blocked service: %v, want 0", got)
	}
	logs := h.logs.String()
	if strings.Count(logs, "tcp listener cannot be opened") != 1 || !strings.Contains(logs, `"service":"blocked"`) {
		t.Errorf("want one error line for the blocked port:\n%s", logs)
	}

	// Once the port is free, the next look at the table opens it.
	blocker.Close()
	h.p.Update(snap)
	h.waitListening("blocked")
	dialEcho(t, busy).c.Close()
}

func TestTCPShutdownClosesListenersAndConnections(t *testing.T) {
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint())))
	h.runTCP()
	h.waitListening("echo")
	tc := dialEcho(t, port)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with an open TCP connection: %v, want deadline exceeded", err)
	}
	if _, err := tc.r.Read(make([]byte, 1)); err == nil {
		t.Error("TCP connection open after Shutdown's time was up")
	}
	h.waitListeners(func(ls []TCPListener) bool { return len(ls) == 0 })
	if _, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		t.Error("listener open after Shutdown began")
	}
}

func TestRunTCPStopsWithItsContext(t *testing.T) {
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint())))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.RunTCP(ctx) }()
	h.waitListening("echo")
	if err := h.p.RunTCP(ctx); err == nil {
		t.Error("a second RunTCP ran")
	}
	tc := dialEcho(t, port)
	start := time.Now()
	cancel()
	if err := recv(t, done); err != nil {
		t.Errorf("RunTCP: %v", err)
	}
	if d := time.Since(start); d < tcpStopGrace {
		t.Errorf("RunTCP returned after %s, before the connections' %s", d, tcpStopGrace)
	}
	if _, err := tc.r.Read(make([]byte, 1)); err == nil {
		t.Error("connection open after RunTCP returned")
	}
}

func TestTCPServiceWithoutListenIsWarnedOnce(t *testing.T) {
	h := newHarness(t, Config{})
	svc := tcpService("db", 0, addrEndpoint("x", "127.0.0.1:1"))
	h.p.Update(snapshot(svc))
	h.p.Update(snapshot(svc))
	if n := strings.Count(h.logs.String(), "protocol tcp without tcp.listen"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, h.logs)
	}
	// A TCP service has no HTTP route.
	if res, _ := h.get("/"); res.StatusCode != 404 {
		t.Errorf("HTTP request to a TCP service's route: %d, want 404", res.StatusCode)
	}
}

// The TCP keys of a service that takes no TCP connection do nothing: a
// warning says so, once.
func TestTCPKeysOnAnHTTPServiceAreWarnedOnce(t *testing.T) {
	h := newHarness(t, Config{})
	svc := service("web", addrEndpoint("x", "127.0.0.1:1"))
	svc.Options.TCP.IdleTimeout = time.Minute
	h.p.Update(snapshot(svc))
	h.p.Update(snapshot(svc))
	if n := strings.Count(h.logs.String(), "tcp.idle-timeout and proxy-protocol apply to protocol tcp"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, h.logs)
	}
}

// copyCounted moves small writes through its buffer and, when it may,
// switches to splice once a read fills the buffer; either way every byte
// arrives, in order, and is counted in both counters.
func TestCopyCountedSmallThenBulk(t *testing.T) {
	for _, splice := range []bool{true, false} {
		t.Run("splice "+strconv.FormatBool(splice), func(t *testing.T) { testCopyCounted(t, splice) })
	}
}

func testCopyCounted(t *testing.T, splice bool) {
	src, srcPeer := tcpPair(t)
	dst, dstPeer := tcpPair(t)
	want := make([]byte, 0, 3<<20)
	for i := range 20 { // small messages, each read on its own
		msg := bytes.Repeat([]byte{byte('a' + i)}, 100)
		want = append(want, msg...)
	}
	bulk := make([]byte, 3<<20)
	for i := range bulk {
		bulk[i] = byte(i * 7)
	}
	want = append(want, bulk...)
	go func() {
		for i := range 20 {
			srcPeer.Write(want[i*100 : (i+1)*100])
			time.Sleep(time.Millisecond)
		}
		srcPeer.Write(bulk)
		srcPeer.Close()
	}()
	var n, m atomic.Uint64
	done := make(chan error, 1)
	go func() {
		err := copyCounted(dst, src, counters{&n, &m}, splice)
		dst.Close()
		done <- err
	}()
	got, err := io.ReadAll(dstPeer)
	if err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done); err != nil {
		t.Errorf("copyCounted: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes, want %d, equal: false", len(got), len(want))
	}
	if n.Load() != uint64(len(want)) || m.Load() != uint64(len(want)) {
		t.Errorf("counted %d and %d bytes, want %d", n.Load(), m.Load(), len(want))
	}
}

// tcp.idle-timeout closes a connection through which no byte went for
// that long, and only such a one: not one that talks now and then, nor
// one whose bytes flow one way only.
func TestTCPIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	svc := tcpService("echo", port, a.endpoint())
	svc.Options.TCP.IdleTimeout = idle
	h.p.Update(snapshot(svc))
	h.runTCP()
	h.waitListening("echo")

	quiet, talking := dialEcho(t, port), dialEcho(t, port)
	if err := quiet.roundTrip("then nothing"); err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	closed := make(chan error, 1)
	var closedAt time.Time
	go func() {
		_, err := quiet.r.ReadByte()
		closedAt = time.Now()
		closed <- err
	}()
	// talking sends a message every eighth of the timeout, for three
	// timeouts.
	for range 3 * 8 {
		time.Sleep(idle / 8)
		if err := talking.roundTrip("still here"); err != nil {
			t.Fatalf("a connection that talks was cut: %v", err)
		}
	}
	select {
	case err := <-closed:
		if err == nil {
			t.Fatal("the quiet connection got a byte")
		}
	default:
		t.Fatalf("the quiet connection is still open %s after its last byte", time.Since(last))
	}
	if since := closedAt.Sub(last); since < idle {
		t.Errorf("the quiet connection closed %s after its last byte, before the %s timeout", since, idle)
	}
	h.waitMetric(1, "cutover_tcp_idle_closed_total", "service", "echo")
	if err := talking.roundTrip("and now"); err != nil {
		t.Errorf("the talking connection after its peer's timeout: %v", err)
	}
	h.noWarnings()
}

// A client that stops reading while its backend writes is an idle
// connection too: the bytes the relay read cannot be written, and nothing
// else goes through.
func TestTCPIdleTimeoutCutsAStalledReader(t *testing.T) {
	const idle = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	wrote := make(chan error, 1)
	go func() { // one connection: it writes until the write fails
		c, err := ln.Accept()
		if err != nil {
			wrote <- err
			return
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(testTimeout))
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
	}()
	h := newHarness(t, Config{TCPHost: "127.0.0.1"})
	port := freePort(t)
	svc := tcpService("firehose", port, addrEndpoint("a", ln.Addr().String()))
	svc.Options.TCP.IdleTimeout = idle
	h.p.Update(snapshot(svc))
	h.runTCP()
	h.waitListening("firehose")
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client reads nothing: the backend's write fails once the proxy
	// gave up, not at its own deadline.
	if err := recv(t, wrote); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the backend's write: %v; want the proxy to close the connection first", err)
	}
	h.waitMetric(1, "cutover_tcp_idle_closed_total", "service", "firehose")
}

// Where the epoll relay cannot take a connection (net.Pipe ends are not
// TCP connections), relayTCP's goroutines copy, counting every write for
// the idle timeout: a transfer that turned bulk and then slowed to a
// trickle stays, and one that stopped is closed.
func TestTCPIdleTimeoutOnGoroutines(t *testing.T) {
	const idle = 200 * time.Millisecond
	a := newEchoServer(t, "a")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", a.endpoint())))
	b := h.p.Backend("app", "a")
	client, clientPeer := net.Pipe()
	back, backPeer := net.Pipe()
	defer clientPeer.Close()
	defer backPeer.Close()
	why := make(chan string, 1)
	go func() {
		why <- relayTCP(client, back, b, h.p.Table().Service("app").stats, idle, time.Minute, nil, nil)
	}()
	go io.Copy(io.Discard, backPeer)
	// A read that fills the copy's buffer makes the transfer bulk.
	if _, err := clientPeer.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	for range 3 * 8 { // then a trickle, for three timeouts
		time.Sleep(idle / 8)
		if _, err := io.WriteString(clientPeer, "drop"); err != nil {
			t.Fatalf("a trickling connection was cut: %v", err)
		}
	}
	last := time.Now()
	if got := recv(t, why); got != "idle" {
		t.Fatalf("relayTCP ended with %q, want idle", got)
	}
	if since := time.Since(last); since < idle {
		t.Errorf("closed %s after the last byte, before the %s timeout", since, idle)
	}
}
