package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
	"github.com/cutoverproxy/cutover/proxy/reqctx"
)

// rawBackend is a TCP server whose connections are served by a function
// of the test, for answers net/http's server would not give.
type rawBackend struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

// newRawBackend serves each connection with serve, given its number
// (from 1); the connection is closed when serve returns.
func newRawBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader, n int)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(rb.accepted.Add(1))
			rb.mu.Lock()
			rb.conns = append(rb.conns, c)
			rb.mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c), n)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		rb.mu.Lock()
		for _, c := range rb.conns {
			c.Close()
		}
		rb.mu.Unlock()
		wg.Wait()
	})
	return rb
}

func (rb *rawBackend) addr() string { return rb.ln.Addr().String() }

// answerEach reads requests on c and writes response to each, until the
// client closes c.
func answerEach(response string) func(c net.Conn, br *bufio.Reader, n int) {
	return func(c net.Conn, br *bufio.Reader, _ int) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, response); err != nil {
				return
			}
		}
	}
}

// newTestH1 is the fast path of one backend at addr, dialled as the proxy
// dials.
func newTestH1(addr string, headerTimeout time.Duration) *h1 {
	tr := transport{dialTimeout: time.Second}
	return newH1(tr.dialer(context.Background(), addr), 4, 4*time.Second, headerTimeout)
}

// fetch sends a GET (or method) through h and reads the whole answer.
func fetch(t testing.TB, h *h1, method, addr string) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestH1ReusesItsConnection(t *testing.T) {
	rb := newRawBackend(t, answerEach(okResponse))
	h := newTestH1(rb.addr(), 0)
	defer h.close()
	for i := range 20 {
		if _, body, err := fetch(t, h, "GET", rb.addr()); err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := rb.accepted.Load(); n != 1 {
		t.Errorf("20 sequential requests used %d connections, want 1", n)
	}
}

func TestH1ThroughTheProxyReusesConnections(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", be))))
	for i := range 20 {
		if res, body := h.get("/x"); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %s %q", i, res.Status, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential requests through the proxy used %d backend connections, want 1", n)
	}
	if c := h.p.Table().services[0].backends[0].conns.Load(); c == nil || c.fast == nil {
		t.Error("a plain-HTTP backend has no fast path")
	}
}

// A backend that closes each connection after its response (without
// saying so): the next GET finds the pooled connection dead and is sent
// again on a new one.
func TestH1RetriesAStaleConnection(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, okResponse)
		}
	})
	h := newTestH1(rb.addr(), 0)
	defer h.close()
	for i := range 3 {
		if _, body, err := fetch(t, h, "GET", rb.addr()); err != nil || body != "ok" {
			t.Fatalf("GET %d: %q, %v", i, body, err)
		}
	}
	if n := rb.accepted.Load(); n != 3 {
		t.Errorf("3 GETs made %d connections, want 3", n)
	}
}

// An idle connection is checked before it is used: one the backend closed
// meanwhile is not used, even 20 ms later and for a POST, which could not
// be sent again.
func TestH1ChecksAnIdleConnectionBeforeUse(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, okResponse)
		}
	})
	h := newTestH1(rb.addr(), 0)
	defer h.close()
	if _, _, err := fetch(t, h, "GET", rb.addr()); err != nil {
		t.Fatal(err)
	}
	if len(h.pool()) != 1 {
		t.Fatalf("%d idle connections after a GET, want 1", len(h.pool()))
	}
	time.Sleep(20 * time.Millisecond)
	if _, body, err := fetch(t, h, "POST", rb.addr()); err != nil || body != "ok" {
		t.Fatalf("POST after the backend closed the idle connection: %q, %v", body, err)
	}
	if n := rb.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// Bytes a backend sends after a response's body, in a later segment, are
// not read as the next request's response: the idle connection is checked
// before every reuse.
func TestH1SurplusAfterABodyIsNotTheNextResponse(t *testing.T) {
	for _, surplus := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray!",
		"tail of a body longer than its length",
	} {
		rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.URL.Path != "/first" {
					io.WriteString(c, okResponse)
					continue
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
				time.Sleep(20 * time.Millisecond)
				io.WriteString(c, surplus)
			}
		})
		h := newHarness(t, Config{})
		h.p.Update(snapshot(service("app", addrEndpoint("a", rb.addr()))))
		if res, body := h.get("/first"); res.StatusCode != 200 || body != "first" {
			t.Fatalf("GET /first: %s %q", res.Status, body)
		}
		time.Sleep(50 * time.Millisecond)
		if res, body := h.get("/second"); res.StatusCode != 200 || body != "ok" {
			t.Errorf("GET /second after a body followed by %q: %s %q, want 200 \"ok\"", surplus, res.Status, body)
		}
	}
}

// A backend that sends a body after its answer to a HEAD, in a later
// write: those bytes must not become the next request's response (the
// next request may be another client's).
func TestH1StrayBytesAfterAResponseAreNotTheNextResponse(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Method == "HEAD" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 44\r\n\r\n")
				time.Sleep(20 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray!")
				continue
			}
			io.WriteString(c, okResponse)
		}
	})
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", rb.addr()))))
	if res, _ := h.do(h.request("HEAD", "app.test", "/x", nil)); res.StatusCode != 200 {
		t.Fatalf("HEAD: %s", res.Status)
	}
	time.Sleep(50 * time.Millisecond)
	if res, body := h.get("/y"); res.StatusCode != 200 || body != "ok" {
		t.Errorf("GET after the HEAD: %s %q, want 200 \"ok\"", res.Status, body)
	}
}

// The backend restarts while two connections are pooled: the retry of a
// GET dials anew instead of taking the other dead connection.
func TestH1RetryAfterAStaleConnectionDials(t *testing.T) {
	kill := make(chan struct{})
	var both sync.WaitGroup
	both.Add(2)
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		first := n <= 2
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if first {
				// Hold both first requests, so that two connections
				// end in the pool.
				both.Done()
				both.Wait()
				first = false
				io.WriteString(c, okResponse)
				<-kill
				return // the restart
			}
			io.WriteString(c, okResponse)
		}
	})
	h := newTestH1(rb.addr(), 0)
	defer h.close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, _, err := fetch(t, h, "GET", rb.addr()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(h.pool()) != 2 {
		t.Fatalf("%d idle connections, want 2", len(h.pool()))
	}
	// The backend closes both; the check before reuse may see it or not
	// (it is a race with the kernel), and a dead connection that passes it
	// must be retried on a new one, not on the other dead one.
	close(kill)
	if _, body, err := fetch(t, h, "GET", rb.addr()); err != nil || body != "ok" {
		t.Fatalf("GET after the backend restarted: %q, %v", body, err)
	}
}

// cancelOnWrite cancels the request while it is written.
type cancelOnWrite struct {
	net.Conn
	cancel func()
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.cancel()
	time.Sleep(10 * time.Millisecond) // the context's AfterFunc runs
	return n, err
}

// A client that goes away while its request is written ends the wait at
// once: the response-header deadline set after the write does not replace
// the cancellation's.
func TestH1CancelDuringTheWriteIsNotUndoneByTheHeaderTimeout(t *testing.T) {
	forEachCancel(t, func(t *testing.T, withCancel func() (context.Context, context.CancelFunc)) {
		rb := silentBackend(t)
		ctx, cancel := withCancel()
		defer cancel()
		dial := func(context.Context, string, string) (net.Conn, error) {
			c, err := net.Dial("tcp", rb.addr())
			if err != nil {
				return nil, err
			}
			return &cancelOnWrite{Conn: c, cancel: cancel}, nil
		}
		h := newH1(dial, 4, 4*time.Second, 10*time.Second)
		defer h.close()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rb.addr()+"/", nil)
		began := time.Now()
		if _, err := h.RoundTrip(req); err == nil {
			t.Fatal("a cancelled request got a response")
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("a request cancelled while it was written returned after %v (the header timeout is 10 s)", d)
		}
	})
}

// forEachCancel runs f with the two kinds of request context the fast
// path stops on: any context (context.AfterFunc) and the one cutover's
// HTTP/1.1 server makes (reqctx.WithCancel, whose Hook it arms).
func forEachCancel(t *testing.T, f func(t *testing.T, withCancel func() (context.Context, context.CancelFunc))) {
	t.Run("context", func(t *testing.T) {
		f(t, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) })
	})
	t.Run("hook", func(t *testing.T) {
		f(t, func() (context.Context, context.CancelFunc) {
			ctx, cancel, _ := reqctx.WithCancel(context.Background())
			return ctx, cancel
		})
	})
}

// Within send (wfd set), h1conn.Write writes with raw system calls until
// the socket is full, and the rest through the connection, which waits:
// bytes beyond the socket's buffers arrive whole and in order, some raw,
// the rest through net.Conn.Write.
func TestH1ConnWriteFillsTheSocketThenWaits(t *testing.T) {
	a, b := tcpPair(t)
	counted := &writeCounter{TCPConn: a.(*net.TCPConn)}
	pc := newH1Conn(counted)
	if pc.rc == nil {
		t.Skip("no raw system calls here")
	}
	pc.rc.Control(func(fd uintptr) { pc.wfd = int(fd) })
	defer func() { pc.wfd = -1 }()
	p := make([]byte, 32<<20) // more than a loopback socket's send and receive buffers
	for i := range p {
		p[i] = byte(i / 4093)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // the raw writes fill the socket meanwhile
		buf, _ := io.ReadAll(io.LimitReader(b, int64(len(p))))
		got <- buf
	}()
	if n, err := pc.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
	}
	if buf := <-got; !bytes.Equal(buf, p) {
		t.Errorf("the peer read %d bytes, not the %d written in order", len(buf), len(p))
	}
	if n := counted.n.Load(); n == 0 || n == int64(len(p)) {
		t.Errorf("net.Conn.Write wrote %d of %d bytes, want the rest after the raw writes", n, len(p))
	}
}

// writeCounter counts the bytes written through Write.
type writeCounter struct {
	*net.TCPConn
	n atomic.Int64
}

func (c *writeCounter) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// send writes the request and returns once the answer can be read; on a
// reused connection, only if the backend has neither closed it nor sent
// anything (errNotQuiet, and nothing written).
func TestSendChecksAndWaitsForTheAnswer(t *testing.T) {
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	t.Run("quiet", func(t *testing.T) {
		a, b := tcpPair(t)
		pc := newH1Conn(a)
		pc.bw.WriteString(req)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, len(req))
			n, _ := io.ReadFull(b, buf)
			got <- string(buf[:n])
			time.Sleep(50 * time.Millisecond) // send waits meanwhile
			io.WriteString(b, okResponse)
		}()
		if err := pc.send(true); err != nil || pc.sendErr != nil {
			t.Fatalf("send: %v, %v", err, pc.sendErr)
		}
		if s := <-got; s != req {
			t.Errorf("the backend read %q, want %q", s, req)
		}
		// The answer is there: a read that cannot wait gets it.
		var n int
		var err error
		buf := make([]byte, 64)
		pc.rc.Read(func(fd uintptr) bool {
			n, err = syscall.Read(int(fd), buf)
			return true
		})
		if n <= 0 || !strings.HasPrefix(okResponse, string(buf[:n])) {
			t.Errorf("read after send: %q, %v; want the start of %q", buf[:max(n, 0)], err, okResponse)
		}
	})
	for _, c := range []struct {
		name  string
		spoil func(b net.Conn)
	}{
		{"unread bytes", func(b net.Conn) { io.WriteString(b, "x") }},
		{"closed by the backend", func(b net.Conn) { b.Close() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := tcpPair(t)
			pc := newH1Conn(a)
			pc.bw.WriteString(req)
			c.spoil(b)
			waitFor(t, func() bool { return readable(a) }, "the connection has nothing to read")
			a.SetReadDeadline(time.Now().Add(testTimeout)) // a wait is a failure, not a hang
			if err := pc.send(true); err != nil || pc.sendErr != errNotQuiet {
				t.Fatalf("send: %v, %v; want errNotQuiet", err, pc.sendErr)
			}
			if c.name == "unread bytes" {
				b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if n, err := b.Read(make([]byte, 64)); n > 0 || !isTimeout(err) {
					t.Errorf("the backend read %d bytes (%v), want none", n, err)
				}
			}
		})
	}
	// A backend may answer a new connection before the request (an early
	// 503) and stop sending: send must not wait for more.
	t.Run("new connection answered early", func(t *testing.T) {
		a, b := tcpPair(t)
		pc := newH1Conn(a)
		pc.bw.WriteString(req)
		io.WriteString(b, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		b.(*net.TCPConn).CloseWrite()
		go io.Copy(io.Discard, b)
		waitFor(t, func() bool { return readable(a) }, "the early answer never came")
		a.SetReadDeadline(time.Now().Add(testTimeout))
		start := time.Now()
		if err := pc.send(false); err != nil || pc.sendErr != nil {
			t.Fatalf("send: %v, %v", err, pc.sendErr)
		}
		res, err := readFinalResponse(pc.br, &http.Request{Method: "GET"})
		if err != nil || res.StatusCode != 503 || time.Since(start) > testTimeout/2 {
			t.Errorf("after send: %v, %v after %v; want the 503 at once", res, err, time.Since(start))
		}
	})
	t.Run("no file descriptor", func(t *testing.T) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		pc := newH1Conn(c1)
		pc.bw.WriteString(req)
		go io.Copy(io.Discard, c2)
		if err := pc.send(true); err != nil || pc.sendErr != nil {
			t.Fatalf("send: %v, %v", err, pc.sendErr)
		}
	})
}

// readable reports whether c has bytes or its end to read, peeking.
func readable(c net.Conn) bool {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	n := -1
	rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), make([]byte, 1), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n >= 0
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func waitFor(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Bytes after a response (an answer to no request) put the connection
// out of step: it is closed, not pooled.
func TestH1DropsAConnectionWithBytesAfterTheResponse(t *testing.T) {
	rb := newRawBackend(t, answerEach(okResponse+"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"))
	h := newTestH1(rb.addr(), 0)
	defer h.close()
	for i := range 2 {
		if _, body, err := fetch(t, h, "GET", rb.addr()); err != nil || body != "ok" {
			t.Fatalf("GET %d: %q, %v", i, body, err)
		}
	}
	if n := rb.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the first had bytes after its response", n)
	}
}

// closeIdle (the backend drains) closes the idle connections and the one
// whose response is in flight when it ends; a later dial pools again.
func TestH1CloseIdleDiscardsUntilTheNextDial(t *testing.T) {
	release := make(chan struct{})
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/slow" {
				<-release
			}
			io.WriteString(c, okResponse)
		}
	})
	h := newTestH1(rb.addr(), 0)
	defer h.close()
	if _, _, err := fetch(t, h, "GET", rb.addr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	slow, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rb.addr()+"/slow", nil)
	done := make(chan error, 1)
	go func() {
		res, err := h.RoundTrip(slow) // takes the idle connection
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		done <- err
	}()
	waitFor(t, func() bool { return len(h.pool()) == 0 }, "the slow request did not take the idle connection")
	h.closeIdle()
	close(release)
	if err := recv(t, done); err != nil {
		t.Fatalf("the slow request: %v", err)
	}
	if len(h.pool()) != 0 {
		t.Errorf("%d idle connections after a response that ended during a drain, want 0", len(h.pool()))
	}
	if _, _, err := fetch(t, h, "GET", rb.addr()); err != nil {
		t.Fatal(err)
	}
	if len(h.pool()) != 1 {
		t.Errorf("%d idle connections after a new dial, want 1", len(h.pool()))
	}
	if n := rb.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// silentBackend reads requests and never answers.
func silentBackend(t testing.TB) *rawBackend {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	return newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		go func() { <-stop; c.Close() }()
		io.Copy(io.Discard, br)
	})
}

func TestH1ResponseHeaderTimeout(t *testing.T) {
	rb := silentBackend(t)
	h := newTestH1(rb.addr(), 100*time.Millisecond)
	defer h.close()
	began := time.Now()
	_, _, err := fetch(t, h, "GET", rb.addr())
	if !errors.Is(err, errHeaderTimeout) {
		t.Fatalf("err = %v, want %v", err, errHeaderTimeout)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error timeout", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the 100 ms header timeout took %v", d)
	}
}

// The response-header timeout holds for every head on a kept connection,
// whether the deadline of an earlier request was kept (a small body read
// from the buffer), has passed while the connection was idle, or was
// cleared for a body that took longer than the timeout, or for one that
// took a moment.
func TestH1HeadDeadlineAcrossRequests(t *testing.T) {
	const timeout = 200 * time.Millisecond
	idle := timeout + 2*headSlack(timeout)
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		for i := 0; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			switch i {
			case 0:
				io.WriteString(c, okResponse)
			case 1:
				time.Sleep(timeout / 4)
				io.WriteString(c, okResponse)
			case 2:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
				time.Sleep(idle)
				io.WriteString(c, "cd")
			case 3:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nef")
				time.Sleep(time.Millisecond)
				io.WriteString(c, "gh")
			default:
				io.Copy(io.Discard, br) // no answer: the timeout ends the request
				return
			}
		}
	})
	h := newTestH1(rb.addr(), timeout)
	defer h.close()
	want := []string{"ok", "ok", "abcd", "efgh"}
	for i, w := range want {
		if i == 1 {
			time.Sleep(idle) // the kept deadline passes
		}
		if _, body, err := fetch(t, h, "GET", rb.addr()); err != nil || body != w {
			t.Fatalf("request %d: %q, %v; want %q", i, body, err, w)
		}
	}
	if n := rb.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	began := time.Now()
	if _, _, err := fetch(t, h, "GET", rb.addr()); !errors.Is(err, errHeaderTimeout) {
		t.Fatalf("a request never answered: %v, want %v", err, errHeaderTimeout)
	}
	if d := time.Since(began); d < timeout {
		t.Errorf("the %v header timeout ended the request after %v", timeout, d)
	}
}

// A busy connection keeps the deadline set for an earlier response head:
// 20 requests with small bodies, one right after the other, set it once,
// not 40 times.
func TestH1HeadDeadlineIsKeptOnABusyConnection(t *testing.T) {
	rb := newRawBackend(t, answerEach(okResponse))
	var sets atomic.Int64
	h := newH1(func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", rb.addr())
		if err != nil {
			return nil, err
		}
		return &deadlineCounter{TCPConn: c.(*net.TCPConn), sets: &sets}, nil
	}, 4, 4*time.Second, time.Minute)
	defer h.close()
	for i := range 20 {
		if _, body, err := fetch(t, h, "GET", rb.addr()); err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := rb.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	if n := sets.Load(); n < 1 || n > 2 { // 2 if the requests spanned its 1 s of slack
		t.Errorf("the read deadline was set %d times for 20 requests, want 1", n)
	}
}

// deadlineCounter counts the read deadlines set on a connection.
type deadlineCounter struct {
	*net.TCPConn
	sets *atomic.Int64
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.TCPConn.SetReadDeadline(t)
}

// A body read after its Close fails as net/http's does: its connection
// may be carrying another request by then.
func TestH1BodyReadAfterClose(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
		io.Copy(io.Discard, br)
	})
	h := newTestH1(rb.addr(), time.Minute)
	defer h.close()
	req, _ := http.NewRequest("GET", "http://"+rb.addr()+"/", nil)
	res, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(res.Body, buf); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if n, err := res.Body.Read(buf); n != 0 || err != http.ErrBodyReadAfterClose {
		t.Errorf("Read after Close = %d, %v; want 0, %v", n, err, http.ErrBodyReadAfterClose)
	}
}

func TestH1ClientCancelEndsTheWait(t *testing.T) {
	forEachCancel(t, func(t *testing.T, withCancel func() (context.Context, context.CancelFunc)) {
		rb := silentBackend(t)
		h := newTestH1(rb.addr(), 20*time.Second) // bounds a cancel that does not stop the wait
		defer h.close()
		ctx, cancel := withCancel()
		defer cancel()
		time.AfterFunc(100*time.Millisecond, cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rb.addr()+"/", nil)
		began := time.Now()
		_, err := h.RoundTrip(req)
		if err == nil || errors.Is(err, errHeaderTimeout) {
			t.Fatalf("err = %v, want the cancelled request's error", err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("a request cancelled after 100 ms returned after %v", d)
		}
		if len(h.pool()) != 0 {
			t.Error("the cancelled request's connection was pooled")
		}
	})
}

// The fast path stops a request of cutover's server through its
// connection's Hook: armed while the exchange waits, empty after it; and
// the client's later close does not reach the pooled backend connection.
func TestH1HookIsArmedForTheExchangeOnly(t *testing.T) {
	release := make(chan struct{})
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			<-release
			io.WriteString(c, okResponse)
		}
	}).addr()
	var once sync.Once
	answer := func() { once.Do(func() { close(release) }) }
	t.Cleanup(answer) // before the backend's cleanup, which waits for its handlers
	h := newTestH1(rb, 0)
	defer h.close()
	ctx, cancel, hook := reqctx.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rb+"/", nil)
	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := h.RoundTrip(req)
		done <- result{res, err}
	}()
	probe := func() {}
	waitFor(t, func() bool {
		if hook.Arm(&probe) {
			hook.Disarm(&probe)
			return false
		}
		return true
	}, "the hook is not armed while the exchange waits")
	answer()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	io.Copy(io.Discard, r.res.Body)
	r.res.Body.Close()
	if !hook.Arm(&probe) {
		t.Fatal("the hook is still armed after the exchange")
	}
	hook.Disarm(&probe)
	cancel()
	if len(h.pool()) != 1 {
		t.Fatalf("%d idle connections after the exchange, want 1", len(h.pool()))
	}
	if pc := <-h.pool(); pc.rc.Read(func(uintptr) bool { return true }) != nil {
		t.Error("the client's close reached the pooled connection (its deadline passed)")
	}
}

// A client that leaves after the response's head came, before its body
// was closed, leaves no connection in the pool: its abort may have hit it.
func TestH1ClientGoneBeforeTheBodyClosedIsNotPooled(t *testing.T) {
	rb := newRawBackend(t, answerEach(okResponse)).addr()
	h := newTestH1(rb, 0)
	defer h.close()
	forEachCancel(t, func(t *testing.T, withCancel func() (context.Context, context.CancelFunc)) {
		ctx, cancel := withCancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rb+"/", nil)
		res, err := h.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		cancel()
		res.Body.Close()
		if n := len(h.pool()); n != 0 {
			t.Errorf("%d idle connections after the client left, want 0", n)
		}
	})
}

// A request whose client went before the hook was armed fails at once,
// is not sent, and leaves no connection in the pool.
func TestH1HookEndedBeforeTheExchange(t *testing.T) {
	var requests atomic.Int64
	served := make(chan struct{}, 1)
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		defer func() { served <- struct{}{} }()
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			requests.Add(1)
			if _, err := io.WriteString(c, okResponse); err != nil {
				return
			}
		}
	}).addr()
	h := newTestH1(rb, 0)
	defer h.close()
	if _, _, err := fetch(t, h, "GET", rb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel, _ := reqctx.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rb+"/", nil)
	if _, err := h.RoundTrip(req); err == nil {
		t.Fatal("a request whose client went got a response")
	}
	if len(h.pool()) != 0 {
		t.Errorf("%d idle connections, want 0: the aborted one was pooled", len(h.pool()))
	}
	// The pooled connection was taken and closed: the backend reads to its
	// end, after any request that was written.
	select {
	case <-served:
	case <-time.After(testTimeout):
		t.Fatal("the backend connection was left open")
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the backend read %d requests, want 1: the aborted one was sent", n)
	}
}

// The fast path reads backend responses as strictly as net/http's
// Transport: for each raw answer, both give the same error or the same
// status, body and trailers.
func TestH1ParsesResponsesLikeTheTransport(t *testing.T) {
	big := strings.Repeat("a", 2<<20)
	tests := []struct {
		name     string
		response string
		wantErr  bool // of the round trip or of reading the body
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false},
		{"typical", typicalResponse, false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", false},
		{"repeated content lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", false},
		{"body until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", false},
		{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
		{"chunked with a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n", false},
		{"content length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"conflicting content lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", true},
		{"negative content length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello", true},
		{"content length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello", true},
		{"unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", true},
		{"NUL in a header value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", true},
		{"header line without a colon", "HTTP/1.1 200 OK\r\nX-A a\r\nContent-Length: 0\r\n\r\n", true},
		{"space before the colon (both accept it in a response)", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n", false},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", true},
		{"bad status line", "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", true},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", true},
		{"early hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.0, body until close", "HTTP/1.0 200 OK\r\n\r\nuntil close", false},
		{"204 with a body ignored", "HTTP/1.1 204 No Content\r\n\r\n", false},
		{"head over 1 MiB", "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\nContent-Length: 0\r\n\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each connection gets the response, then is closed.
			rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
				if _, err := http.ReadRequest(br); err == nil {
					io.WriteString(c, tt.response)
				}
			})
			h := newTestH1(rb.addr(), 0)
			defer h.close()
			tr := transport{protocol: discovery.HTTP, dialTimeout: time.Second, maxIdlePerHost: 1, idleTimeout: time.Second}
			slow, closeIdle := tr.roundTripper(context.Background(), rb.addr())
			slow = slow.(dualTransport).slow
			defer closeIdle()

			fast := outcomeOf(t, h, rb.addr())
			std := outcomeOf(t, slow, rb.addr())
			if (fast.err != "") != tt.wantErr {
				t.Errorf("fast path: %+v, want an error: %v", fast, tt.wantErr)
			}
			if (std.err != "") != tt.wantErr {
				t.Errorf("net/http: %+v, want an error: %v", std, tt.wantErr)
			}
			fast.err, std.err = "", "" // the messages differ in wording
			if !reflect.DeepEqual(fast, std) {
				t.Errorf("fast path %+v, net/http %+v", fast, std)
			}
		})
	}
}

// outcome is what a client sees of a response.
type outcome struct {
	err     string
	status  int
	body    string
	trailer http.Header
}

func outcomeOf(t testing.TB, rt http.RoundTripper, addr string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	res, err := rt.RoundTrip(req)
	if err != nil {
		return outcome{err: err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	o := outcome{status: res.StatusCode, body: string(b), trailer: res.Trailer}
	if err != nil {
		o.err = err.Error()
	}
	return o
}

// The request the fast path writes is the one net/http's Transport would
// send for the same client request: same request line, Host, headers and
// length.
func TestH1WritesTheRequestTheTransportWould(t *testing.T) {
	const backend = "10.0.0.1:8080"
	tests := []struct{ name, raw string }{
		{"plain", "GET /x HTTP/1.1\r\nHost: app.test\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"},
		{"query and escapes", "GET /a%2Fb/c%20d?x=1&y=%20&z HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"no user agent", "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"HTTP/1.0 without Host", "GET /old HTTP/1.0\r\n\r\n"},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"backslash", "GET /api/..\\admin HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"raw UTF-8 and quotes", "GET /caf\xc3\xa9/a\"b{|}^`?q=\xc3\xa9 HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"encoded slash and letter", "GET /a%2Fb/%41?x=%2F HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"DELETE", "DELETE /item/1 HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"POST, empty", "POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n"},
		{"HEAD", "HEAD /x HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"hop-by-hop", "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eA==\r\nTe: trailers, deflate\r\n\r\n"},
		{"spoofed forwarding headers", "GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nForwarded: for=1.2.3.4\r\nX-Real-Ip: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Request-Id: mine\r\n\r\n"},
		{"repeated header", "GET / HTTP/1.1\r\nHost: app.test\r\nAccept: a\r\nAccept: b\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = "192.0.2.7:50000"
			if !fastEligible(r) {
				t.Fatal("not eligible for the fast path")
			}
			fast, std, err := writeBoth(r, backend)
			if err != nil {
				t.Fatal(err)
			}
			f, s := parseHead(t, fast), parseHead(t, std)
			if !reflect.DeepEqual(f, s) {
				t.Errorf("fast path wrote\n%s\nnet/http writes\n%s", fast, std)
			}
			if f.header["X-Request-Id"][0] != "req-1" || f.header["X-Real-Ip"][0] != "192.0.2.7" {
				t.Errorf("fast path headers %v lack the proxy's", f.header)
			}
		})
	}
}

// writeBoth writes r to backend as the fast path does and as the
// Transport would (the request of outbound), with the request ID "req-1".
func writeBoth(r *http.Request, backend string) (fast, std string, err error) {
	var fb bytes.Buffer
	bw := bufio.NewWriter(&fb)
	if err := writeRequest(bw, r, backend, "req-1"); err != nil {
		return "", "", fmt.Errorf("fast path: %w", err)
	}
	bw.Flush()
	out, err := (*Proxy)(nil).outbound(&exchange{r: r, id: "req-1"})
	if err != nil {
		return "", "", fmt.Errorf("outbound: %w", err)
	}
	out.URL.Host = backend
	var sb bytes.Buffer
	if err := out.Write(&sb); err != nil {
		return "", "", fmt.Errorf("net/http: %w", err)
	}
	return fb.String(), sb.String(), nil
}

// head is what a backend reads of a request.
type head struct {
	method, uri, host, proto string
	contentLength            int64
	header                   http.Header
}

func parseHead(t testing.TB, raw string) head {
	t.Helper()
	h, err := readHead(raw)
	if err != nil {
		t.Fatalf("%v in\n%s", err, raw)
	}
	return h
}

// readHead is what a backend reads of a request without a body, or why
// it cannot: a body, or bytes after the request, are errors.
func readHead(raw string) (head, error) {
	br := bufio.NewReader(strings.NewReader(raw))
	r, err := http.ReadRequest(br)
	if err != nil {
		return head{}, err
	}
	if n, err := io.Copy(io.Discard, r.Body); n != 0 || err != nil {
		return head{}, fmt.Errorf("%d bytes of body (%v)", n, err)
	}
	if n := br.Buffered(); n > 0 {
		return head{}, fmt.Errorf("%d bytes after the request", n)
	}
	return head{r.Method, r.RequestURI, r.Host, r.Proto, r.ContentLength, r.Header}, nil
}

// fastEligible keeps requests with a body, an upgrade or Expect, with an
// absolute-form target, and HTTP/2 requests, on net/http's Transport.
func TestFastEligible(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", false},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", false},
		{"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"GET http:admin HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", true},
	}
	for _, tt := range tests {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
		if err != nil {
			t.Fatal(err)
		}
		if got := fastEligible(r); got != tt.want {
			t.Errorf("fastEligible(%q) = %v, want %v", tt.raw, got, tt.want)
		}
	}
	h2 := func(host string, contentLength int64, header http.Header) *http.Request {
		r := h2Request("GET", "/x", host, header)
		r.ContentLength = contentLength
		return r
	}
	h2tests := []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"stream ended with its headers", h2("app.test", 0, nil), true},
		{"a body of unknown length", h2("app.test", -1, nil), false},
		{"content-length: 0", h2("app.test", 0, http.Header{"Content-Length": {"0"}}), false},
		{"an authority with a space", h2("app test", 0, nil), false},
		{"a non-ASCII authority", h2("caf\u00e9.test", 0, nil), false},
		{"an IPv6 zone", h2("[fe80::1%25eth0]:80", 0, nil), false},
	}
	for _, tt := range h2tests {
		if got := fastEligible(tt.r); got != tt.want {
			t.Errorf("HTTP/2, %s: fastEligible = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// h2Request is a request as net/http's HTTP/2 server hands it over when
// the stream ended with its headers: a Body that is not http.NoBody,
// ContentLength 0, Host from :authority.
func h2Request(method, path, authority string, header http.Header) *http.Request {
	if header == nil {
		header = http.Header{}
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		panic(err)
	}
	return &http.Request{
		Method: method, URL: u, RequestURI: path, Host: authority, Header: header,
		Proto: "HTTP/2.0", ProtoMajor: 2, RemoteAddr: "192.0.2.7:50000",
		Body: io.NopCloser(strings.NewReader("")),
	}
}

// HTTP/2 requests on the fast path: what the backend reads is what the
// Transport would send, with a host field of the client's not repeated.
func TestH1WritesHTTP2RequestsAsTheTransportWould(t *testing.T) {
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"GET", h2Request("GET", "/a/b?q=1", "app.test", http.Header{"Accept": {"*/*"}, "User-Agent": {"h2load"}})},
		{"a host field besides :authority", h2Request("GET", "/", "app.test", http.Header{"Host": {"other.test"}})},
		{"merged cookies and te", h2Request("GET", "/", "app.test:8443", http.Header{"Cookie": {"a=1; b=2"}, "Te": {"trailers"}})},
		{"POST without a body", h2Request("POST", "/form", "app.test", nil)},
		{"OPTIONS *", h2Request("OPTIONS", "*", "app.test", nil)},
		{"a :protocol field left in the header", h2Request("GET", "/", "app.test", http.Header{":protocol": {"websocket"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !fastEligible(tt.r) {
				t.Fatal("not eligible for the fast path")
			}
			var fast bytes.Buffer
			bw := bufio.NewWriter(&fast)
			if err := writeRequest(bw, tt.r, "10.0.0.1:8080", "req-1"); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			out, err := (*Proxy)(nil).outbound(&exchange{r: tt.r, id: "req-1"})
			if err != nil {
				t.Fatal(err)
			}
			out.URL.Host = "10.0.0.1:8080"
			var std bytes.Buffer
			if err := out.Write(&std); err != nil {
				t.Fatal(err)
			}
			if f, s := parseHead(t, fast.String()), parseHead(t, std.String()); !reflect.DeepEqual(f, s) {
				t.Errorf("fast path wrote\n%s\nnet/http writes\n%s", fast.String(), std.String())
			}
		})
	}
}

// net/http's HTTP/2 server lets a space through in the query of :path;
// sent on in an HTTP/1.1 request line it would end the target early, so
// the request is refused. A space in the path is escaped on the way out.
func TestHTTP2TargetWithASpaceIsRefused(t *testing.T) {
	var hits atomic.Int64
	be := startBackend(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", be))))
	for _, target := range []string{"/a?x /admin", "/a?x=1&y= HTTP/1.1"} {
		rec := httptest.NewRecorder()
		h.p.ServeHTTP(rec, h2Request("GET", target, "app.test", nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "query has a space") {
			t.Errorf("%q: %d %q, want 400", target, rec.Code, rec.Body.String())
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests", n)
	}
	rec := httptest.NewRecorder()
	h.p.ServeHTTP(rec, h2Request("GET", "/a b", "app.test", nil))
	if rec.Code != http.StatusOK || hits.Load() != 1 {
		t.Errorf("a space in the path: %d, %d backend requests; want 200 and 1", rec.Code, hits.Load())
	}
}

// A body that failed (cut short) and then reads io.EOF, as net/http's and
// readResponse's do, does not give its connection back to the pool.
func TestH1BodyThatFailedIsNotPooled(t *testing.T) {
	h := newTestH1("127.0.0.1:1", 0)
	defer h.close()
	c1, c2 := net.Pipe()
	defer c2.Close()
	b := &h1body{
		rc:   io.NopCloser(&failThenEOF{}),
		pc:   newH1Conn(c1),
		h:    h,
		keep: true,
	}
	buf := make([]byte, 8)
	if _, err := b.Read(buf); err != io.ErrUnexpectedEOF {
		t.Fatalf("first read: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := b.Read(buf); err != io.EOF {
		t.Fatalf("second read: %v, want io.EOF", err)
	}
	b.Close()
	if n := len(h.pool()); n != 0 {
		t.Errorf("%d connections pooled after a failed body, want 0", n)
	}
}

// failThenEOF reads io.ErrUnexpectedEOF once, then io.EOF.
type failThenEOF struct{ failed bool }

func (f *failThenEOF) Read([]byte) (int, error) {
	if f.failed {
		return 0, io.EOF
	}
	f.failed = true
	return 0, io.ErrUnexpectedEOF
}
