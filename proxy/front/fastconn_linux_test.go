package front

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fastPair returns a fastConn, accepted bare, and the client's end.
func fastPair(t *testing.T) (*fastConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accept, _ := newAcceptor(ln, false)
	c, err := accept()
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := c.(*fastConn)
	if !ok {
		t.Fatalf("accepted a %T, want a *fastConn", c)
	}
	t.Cleanup(func() { fc.Close(); client.Close() })
	if fc.RemoteAddr().String() != client.LocalAddr().String() || fc.LocalAddr().String() != client.RemoteAddr().String() {
		t.Errorf("addresses %v → %v, want %v → %v", fc.RemoteAddr(), fc.LocalAddr(), client.LocalAddr(), client.RemoteAddr())
	}
	return fc, client
}

// A connection reads what is there without the poller, and enters it for
// the first read that has to wait.
func TestFastConnEntersThePollerToWait(t *testing.T) {
	fc, client := fastPair(t)
	client.Write([]byte("abc"))
	buf := make([]byte, 16)
	waitFor(t, func() bool { return readable(fc) }, "the client's bytes never came")
	if n, err := fc.Read(buf); string(buf[:n]) != "abc" || err != nil {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if fc.file.Load() != nil {
		t.Error("a read that found bytes moved the connection to the poller")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		client.Write([]byte("def"))
	}()
	if n, err := fc.Read(buf); string(buf[:n]) != "def" || err != nil {
		t.Fatalf("Read that waited = %q, %v", buf[:n], err)
	}
	if fc.file.Load() == nil {
		t.Error("a read that waited did not move the connection to the poller")
	}
	client.Close()
	if n, err := fc.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after the client's close = %d, %v; want io.EOF", n, err)
	}
}

func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
	}
}

// readable reports whether fc has bytes or its end to read, peeking.
func readable(fc *fastConn) bool {
	n := -1
	fc.control(func(fd int) { n, _, _ = unix.Recvfrom(fd, make([]byte, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT) })
	return n >= 0
}

// Read deadlines hold before and after the move to the poller, and a set
// deadline reaches a read that waits already.
func TestFastConnDeadlines(t *testing.T) {
	fc, client := fastPair(t)
	client.Write([]byte("x"))
	waitFor(t, func() bool { return readable(fc) }, "the client's byte never came")
	fc.SetReadDeadline(time.Now().Add(-time.Second))
	if n, err := fc.Read(make([]byte, 8)); n != 0 || !isTimeout(err) {
		t.Fatalf("Read past the deadline with a byte there = %d, %v; want a timeout", n, err)
	}
	fc.SetReadDeadline(time.Time{})
	if n, err := fc.Read(make([]byte, 8)); n != 1 || err != nil {
		t.Fatalf("Read without a deadline = %d, %v", n, err)
	}
	fc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := fc.Read(make([]byte, 8)); !isTimeout(err) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read that waits past the deadline: %v; want a timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("the deadline ended the read after %v, want 50 ms", d)
	}
	fc.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		fc.SetReadDeadline(aLongTimeAgo) // as Server.closeIdle does
	}()
	if _, err := fc.Read(make([]byte, 8)); !isTimeout(err) {
		t.Fatalf("Read interrupted by a deadline set meanwhile: %v; want a timeout", err)
	}
}

// A deadline that setDeadline gave a waiting write, left when that write
// ended without arming its own (and passed since), does not fail the
// next write: the write clears it first.
func TestFastConnLeftoverSendDeadline(t *testing.T) {
	fc, client := fastPair(t)
	fc.setSendTimeout(100 * time.Millisecond)
	if err := fc.toPoller(); err != nil {
		t.Fatal(err)
	}
	fc.rearmed.Store(true)
	fc.file.Load().SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := fc.Write([]byte("x")); err != nil {
		t.Fatalf("a write after a leftover send deadline: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
		t.Fatalf("the client did not get the byte: %v", err)
	}
}

// Close from another goroutine ends a read that waits.
func TestFastConnCloseEndsAWait(t *testing.T) {
	fc, _ := fastPair(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		fc.Close()
	}()
	if _, err := fc.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read ended by Close: %v; want net.ErrClosed", err)
	}
	if _, err := fc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v; want net.ErrClosed", err)
	}
	if err := fc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v; want net.ErrClosed", err)
	}
}

// Close waits for a system call on the bare socket that began before the
// move to the poller: closing under it would let the call reach a
// descriptor number that a new connection took meanwhile.
func TestFastConnCloseWaitsForABareCall(t *testing.T) {
	fc, _ := fastPair(t)
	fc.inflight.Add(1) // a bare call between its check and its system call
	if err := fc.toPoller(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		fc.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close did not wait for the bare call in flight")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := unix.FcntlInt(uintptr(fc.fd), unix.F_GETFD, 0); err != nil {
		t.Fatalf("the descriptor is closed under the bare call: %v", err)
	}
	fc.inflight.Add(-1)
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close did not return once the bare call was over")
	}
}

// Writes larger than the socket takes wait in the poller and arrive
// whole and in order, writev's buffers too; TCP_NODELAY is set before
// the second write.
func TestFastConnWrites(t *testing.T) {
	fc, client := fastPair(t)
	noDelay := func() int {
		v := -1
		fc.control(func(fd int) { v, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY) })
		return v
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // the socket fills meanwhile
		b, _ := io.ReadAll(client)
		got <- b
	}()
	if _, err := fc.Write([]byte("head;")); err != nil {
		t.Fatal(err)
	}
	if v := noDelay(); v != 0 {
		t.Errorf("TCP_NODELAY is %d after one write, want 0 (not set yet)", v)
	}
	if n, err := fc.writev([][]byte{[]byte("a;"), big, []byte(";z")}); n != int64(len(big)+4) || err != nil {
		t.Fatalf("writev = %d, %v", n, err)
	}
	if v := noDelay(); v != 1 {
		t.Errorf("TCP_NODELAY is %d after two writes, want 1", v)
	}
	if fc.file.Load() == nil {
		t.Error("a write to a full socket did not move the connection to the poller")
	}
	if n, err := fc.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
	fc.Close()
	want := "head;a;" + string(big) + ";z"
	if b := <-got; string(b) != want {
		t.Errorf("the client read %d bytes, want %d in order", len(b), len(want))
	}
}

// netConn gives a net.TCPConn over the same connection, with the
// deadlines set; the fastConn is closed.
func TestFastConnAsNetConn(t *testing.T) {
	fc, client := fastPair(t)
	fc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	nc, err := fc.netConn()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, ok := nc.(*net.TCPConn); !ok {
		t.Fatalf("netConn = %T, want *net.TCPConn", nc)
	}
	if _, err := nc.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read on the net.TCPConn past the fastConn's deadline: %v; want a timeout", err)
	}
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := fc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the fastConn after netConn: %v; want net.ErrClosed", err)
	}
	client.Write([]byte("ping"))
	buf := make([]byte, 8)
	if n, err := io.ReadFull(nc, buf[:4]); string(buf[:n]) != "ping" || err != nil {
		t.Fatalf("net.TCPConn read %q, %v", buf[:n], err)
	}
	nc.Write([]byte("pong"))
	if n, err := io.ReadFull(client, buf[:4]); string(buf[:n]) != "pong" || err != nil {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
}

// A handler that hijacks a connection accepted bare gets a net.TCPConn
// with the bytes the client sent after its request.
func TestHijackOfABareConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if _, ok := c.(*net.TCPConn); !ok {
			t.Errorf("hijacked a %T, want a *net.TCPConn", c)
		}
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(line))+"\r\nConnection: close\r\n\r\n"+line)
	})
	_, addr := serveFront(t, h, true)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nafter the request\n")
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "\r\n\r\nafter the request\n") {
		t.Errorf("response %q, want the bytes after the request echoed", b)
	}
}

// acceptResult is what one call of an acceptor's accept returned.
type acceptResult struct {
	c   net.Conn
	err error
}

// startAccept calls accept on its own goroutine.
func startAccept(accept func() (net.Conn, error)) <-chan acceptResult {
	res := make(chan acceptResult, 1)
	go func() {
		c, err := accept()
		res <- acceptResult{c, err}
	}()
	return res
}

// waitAccept returns accept's result, failing the test if none came
// within 5 s.
func waitAccept(t *testing.T, res <-chan acceptResult, what string) acceptResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("accept did not return within 5 s %s", what)
		return acceptResult{}
	}
}

// A connection that comes while the acceptor waits is a fastConn too,
// not a net.TCPConn from the listener's Accept.
func TestAcceptWaitsForABareConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accept, acceptLn := newAcceptor(ln, false)
	defer acceptLn.Close()
	for i := range 3 {
		res := startAccept(accept)
		time.Sleep(50 * time.Millisecond) // accept is waiting by then
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		r := waitAccept(t, res, "after a client connected")
		if r.err != nil {
			t.Fatalf("connection %d: %v", i, r.err)
		}
		defer r.c.Close()
		if _, ok := r.c.(*fastConn); !ok {
			t.Fatalf("connection %d came as a %T, want a *fastConn", i, r.c)
		}
		if r.c.RemoteAddr().String() != client.LocalAddr().String() {
			t.Errorf("connection %d from %v, want %v", i, r.c.RemoteAddr(), client.LocalAddr())
		}
	}
}

// Closing the listener newAcceptor returns ends a wait at once, however
// long the acceptor would wait before it looks at the listener again.
func TestAcceptorCloseEndsTheWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accept, acceptLn := newAcceptor(ln, false)
	acceptLn.(*acceptorListener).a.check = time.Hour
	res := startAccept(accept)
	time.Sleep(50 * time.Millisecond)
	if err := acceptLn.Close(); err != nil {
		t.Fatal(err)
	}
	r := waitAccept(t, res, "after its listener closed")
	if !errors.Is(r.err, net.ErrClosed) {
		t.Errorf("accept returned %v, %v; want net.ErrClosed", r.c, r.err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the closed listener's address still takes connections")
	}
}

// The epoll set holds the listener's socket, not a duplicate of it: a
// listener closed without the acceptor stops taking connections at once,
// and accept ends within its check.
func TestAcceptNoticesAListenerClosedElsewhere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accept, acceptLn := newAcceptor(ln, false)
	defer acceptLn.Close()
	acceptLn.(*acceptorListener).a.check = 50 * time.Millisecond
	res := startAccept(accept)
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the closed listener's address still takes connections")
	}
	r := waitAccept(t, res, "after its listener closed")
	if !errors.Is(r.err, net.ErrClosed) {
		t.Errorf("accept returned %v, %v; want net.ErrClosed", r.c, r.err)
	}
}

// A fastConn's addresses are the client's two, read from accept4 and,
// on a wildcard listener, getsockname: IPv4 and IPv6.
func TestAcceptedAddresses(t *testing.T) {
	for _, tc := range []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"0.0.0.0:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		{"[::]:0", "::1"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			ln, err := net.Listen("tcp", tc.listen)
			if err != nil {
				t.Skipf("no %s here: %v", tc.listen, err)
			}
			accept, acceptLn := newAcceptor(ln, false)
			defer acceptLn.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			client, err := net.Dial("tcp", net.JoinHostPort(tc.dial, strconv.Itoa(port)))
			if err != nil {
				t.Skipf("cannot dial %s here: %v", tc.dial, err)
			}
			defer client.Close()
			r := waitAccept(t, startAccept(accept), "with a client waiting")
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.c.Close()
			if _, ok := r.c.(*fastConn); !ok {
				t.Fatalf("accepted a %T, want a *fastConn", r.c)
			}
			if r.c.RemoteAddr().String() != client.LocalAddr().String() || r.c.LocalAddr().String() != client.RemoteAddr().String() {
				t.Errorf("addresses %v → %v, want %v → %v", r.c.RemoteAddr(), r.c.LocalAddr(), client.LocalAddr(), client.RemoteAddr())
			}
		})
	}
}

// A listener whose accept4 could wait (made blocking, as a File handed to
// a child process is) or whose connections' close could (SO_LINGER) keeps
// Go's accept: raw calls that wait would hold a processor.
func TestAcceptKeepsGoForABlockingOrLingeringListener(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, ln *net.TCPListener)
	}{
		{"blocking", func(t *testing.T, ln *net.TCPListener) {
			f, err := ln.File()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			f.Fd() // makes the socket, shared with ln, blocking
		}},
		{"lingering", func(t *testing.T, ln *net.TCPListener) {
			rc, err := ln.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			rc.Control(func(fd uintptr) {
				err = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 3})
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			tc.prepare(t, ln.(*net.TCPListener))
			accept, acceptLn := newAcceptor(ln, false)
			defer acceptLn.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			r := waitAccept(t, startAccept(accept), "with a client waiting")
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.c.Close()
			if _, ok := r.c.(*net.TCPConn); !ok {
				t.Errorf("accepted a %T, want a *net.TCPConn from Go's accept", r.c)
			}
		})
	}
}
