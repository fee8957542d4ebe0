package sendtimeout

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// pair returns a connected loopback pair whose server side, wrapped with
// d, has a small send buffer, and the client side.
func pair(t *testing.T, d time.Duration) (net.Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wl := WrapListener(ln, d)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	cc := client.(*net.TCPConn)
	if err := server.(*Conn).Conn.(*net.TCPConn).SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	return server, cc
}

// stall writes 64 KiB at a time to c until a write fails, and returns how
// long the failing write took, and its error.
func stall(t *testing.T, c net.Conn) (time.Duration, error) {
	t.Helper()
	buf := make([]byte, 64<<10)
	return stallWith(t, c, func() error { _, err := c.Write(buf); return err })
}

// stallWith calls write until it fails and returns how long the failing
// call took, and its error. After 10 s it closes c, which ends a write
// that waits for good, and fails the test.
func stallWith(t *testing.T, c net.Conn, write func() error) (time.Duration, error) {
	t.Helper()
	var stuck atomic.Bool
	watchdog := time.AfterFunc(10*time.Second, func() { stuck.Store(true); c.Close() })
	defer watchdog.Stop()
	for !stuck.Load() {
		start := time.Now()
		if err := write(); err != nil {
			if stuck.Load() {
				break
			}
			return time.Since(start), err
		}
	}
	t.Fatal("writes to a client that reads nothing did not fail within 10 s")
	return 0, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// A write to a client that reads nothing fails with a timeout, no sooner
// than d after it began.
func TestStalledWriteFails(t *testing.T) {
	const d = 200 * time.Millisecond
	server, _ := pair(t, d)
	took, err := stall(t, server)
	if !isTimeout(err) {
		t.Fatalf("write error %v, want a timeout (os.ErrDeadlineExceeded)", err)
	}
	if took < d {
		t.Fatalf("the failing write took %v, less than the timeout %v", took, d)
	}
	// Given up: a write after fails at once, even under a deadline of
	// the caller's (a TLS close_notify's).
	server.SetWriteDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := server.Write([]byte("x")); !isTimeout(err) || time.Since(start) > d {
		t.Fatalf("a write after the timeout: %v after %v, want the timeout at once", err, time.Since(start))
	}
}

// A connection idle for longer than d writes again: no deadline of an
// earlier write is left to fail it.
func TestIdleConnectionWritesAgain(t *testing.T) {
	const d = 100 * time.Millisecond
	server, client := pair(t, d)
	buf := make([]byte, 100)
	for i := range 2 {
		if _, err := server.Write(buf); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * d)
	}
}

// A client that reads slowly but steadily gets a write that takes many
// times d: the timeout counts time without progress, not the whole write.
// (Steadily: the bytes queued in the sockets' buffers, which the writer
// waits behind, are read well within d.)
func TestSlowReaderIsNotCutOff(t *testing.T) {
	const d = 300 * time.Millisecond
	const total = 2 << 20 // 64 reads of 32 KiB, 20 ms apart: at least 1.28 s
	server, client := pair(t, d)
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		n := 0
		for n < total {
			time.Sleep(20 * time.Millisecond)
			m, err := client.Read(buf)
			n += m
			if err != nil {
				read <- err
				return
			}
		}
		read <- nil
	}()
	start := time.Now()
	if n, err := server.Write(make([]byte, total)); err != nil || n != total {
		t.Fatalf("write to a slow reader: %d bytes, %v; want %d, nil", n, err, total)
	}
	if took := time.Since(start); took < 3*d {
		t.Fatalf("the write took %v: the reader was not slow enough to test anything", took)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

// A write deadline of the caller's replaces the timeout while it is set;
// cleared, the timeout is back. SetDeadline sets it as SetWriteDeadline
// does.
func TestCallerDeadlineReplacesTheTimeout(t *testing.T) {
	t.Run("SetWriteDeadline", func(t *testing.T) {
		callerDeadline(t, func(c net.Conn, at time.Time) error { return c.SetWriteDeadline(at) })
	})
	t.Run("SetDeadline", func(t *testing.T) {
		callerDeadline(t, func(c net.Conn, at time.Time) error { return c.SetDeadline(at) })
	})
}

func callerDeadline(t *testing.T, set func(net.Conn, time.Time) error) {
	const d = 100 * time.Millisecond
	server, client := pair(t, d)
	if err := set(server, time.Now().Add(10*d)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := stall(t, server)
	if !isTimeout(err) {
		t.Fatalf("write error %v, want a timeout", err)
	}
	if took := time.Since(start); took < 9*d {
		t.Fatalf("writes failed after %v, before the caller's deadline (%v)", took, 10*d)
	}

	// Cleared: drain the client, then stall again.
	if err := set(server, time.Time{}); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		client.SetReadDeadline(time.Now().Add(3 * d))
		io.Copy(io.Discard, client)
	}()
	<-drained
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatalf("a write after the caller's deadline passed and was cleared: %v", err)
	}
	took, err := stall(t, server)
	if !isTimeout(err) || took < d {
		t.Fatalf("after the caller cleared its deadline: %v after %v, want a timeout after at least %v", err, took, d)
	}
}

// A write deadline cleared from another goroutine while a write waits
// under it gives that write the send timeout, from then: the write does
// not wait for good.
func TestDeadlineClearedDuringAWrite(t *testing.T) {
	const d = 200 * time.Millisecond
	server, _ := pair(t, d)
	if err := server.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var cleared atomic.Int64 // Unix nanoseconds
	timer := time.AfterFunc(3*d, func() {
		cleared.Store(time.Now().UnixNano())
		server.SetWriteDeadline(time.Time{})
	})
	defer timer.Stop()
	_, err := stall(t, server)
	if !isTimeout(err) {
		t.Fatalf("write error %v, want a timeout", err)
	}
	if cleared.Load() == 0 {
		t.Fatal("the write failed before the caller's deadline was cleared")
	}
	if since := time.Since(time.Unix(0, cleared.Load())); since < d {
		t.Fatalf("the write failed %v after the deadline was cleared, before the send timeout %v", since, d)
	}
}

// A deadline of the caller's that ends a write under the send timeout
// (as a proxy aborts a connection) is the caller's: once it is cleared,
// the connection writes again.
func TestCallersDeadlineDoesNotGiveUp(t *testing.T) {
	const d = 5 * time.Second
	server, client := pair(t, d)
	timer := time.AfterFunc(200*time.Millisecond, func() {
		server.SetWriteDeadline(time.Unix(1, 0))
	})
	defer timer.Stop()
	if _, err := stall(t, server); !isTimeout(err) {
		t.Fatalf("write error %v, want a timeout", err)
	}
	if err := server.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	io.Copy(io.Discard, client)
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatalf("a write after the caller's deadline was cleared: %v", err)
	}
}

// Zero or less turns the timeout off: the connection is not wrapped.
func TestZeroIsOff(t *testing.T) {
	c := &net.TCPConn{}
	if got := Wrap(c, 0); got != net.Conn(c) {
		t.Fatalf("Wrap(c, 0) = %T, want c itself", got)
	}
	ln := &net.TCPListener{}
	if got := WrapListener(ln, -time.Second); got != net.Listener(ln) {
		t.Fatalf("WrapListener(ln, -1s) = %T, want ln itself", got)
	}
}

// WriteBuffers writes every buffer, in order, and fails as Write does
// once the client takes no byte for d.
func TestWriteBuffers(t *testing.T) {
	const d = 200 * time.Millisecond
	server, client := pair(t, d)
	c := server.(*Conn)
	v := net.Buffers{[]byte("head "), bytes.Repeat([]byte("b"), 100<<10), []byte(" end")}
	want := bytes.Join(v, nil)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		n, _ := io.ReadFull(client, b)
		got <- b[:n]
	}()
	if n, err := c.WriteBuffers(&v); err != nil || n != int64(len(want)) || len(v) != 0 {
		t.Fatalf("WriteBuffers: %d bytes, %v, %d buffers left; want %d, nil, 0", n, err, len(v), len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the client read %d bytes, not the %d written in order", len(b), len(want))
	}

	// The client reads no more.
	took, err := stallWith(t, server, func() error {
		v := net.Buffers{make([]byte, 1<<10), make([]byte, 64<<10)}
		_, err := c.WriteBuffers(&v)
		return err
	})
	if !isTimeout(err) || took < d {
		t.Fatalf("WriteBuffers to a client that reads nothing: %v after %v, want a timeout after at least %v", err, took, d)
	}
	if _, err := c.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("a write after the timeout: %v, want the timeout at once", err)
	}
}

// Clearing a write deadline that is not set, however often and from
// whatever goroutine, does not push back the send timeout of a write that
// waits.
func TestClearsDoNotPushBackTheTimeout(t *testing.T) {
	const d = 300 * time.Millisecond
	server, _ := pair(t, d)
	ticker := time.NewTicker(d / 3)
	defer ticker.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-ticker.C:
				server.SetWriteDeadline(time.Time{})
				server.SetDeadline(time.Time{})
			case <-done:
				return
			}
		}
	}()
	if took, err := stall(t, server); !isTimeout(err) || took < d {
		t.Fatalf("write error %v after %v, want a timeout after at least %v", err, took, d)
	}
}
