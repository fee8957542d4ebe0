package front

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serveSend serves h with a Server whose SendTimeout is d, on connections
// accepted bare (fastConns) or from the listener's Accept (net.TCPConns).
func serveSend(t *testing.T, h http.Handler, d time.Duration, bare bool) string {
	t.Helper()
	srv := &Server{Handler: h, Fallback: netHTTPServer(h), netAccept: !bare, SendTimeout: d}
	return serveOn(t, "front", srv.Serve, srv.Close)
}

// dialReceiving connects to addr with a receive buffer of rcvbuf bytes
// (0: the system's), so that a client that does not read fills up soon.
func dialReceiving(t *testing.T, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stalled is how a write that failed ended: its error and how long the
// writer had gone without a successful write.
type stalled struct {
	err   error
	since time.Duration
}

// writeUntilFailure writes 64 KiB at a time to w, at most 256 MiB, and
// reports the first failure (or a nil error) on res.
func writeUntilFailure(w io.Writer, res chan<- stalled) {
	buf := make([]byte, 64<<10)
	last := time.Now()
	for range 4096 {
		if _, err := w.Write(buf); err != nil {
			res <- stalled{err, time.Since(last)}
			return
		}
		last = time.Now()
	}
	res <- stalled{}
}

// waitStalled returns what res reports, failing the test if nothing came
// within testTimeout.
func waitStalled(t *testing.T, res <-chan stalled, d time.Duration) stalled {
	t.Helper()
	select {
	case s := <-res:
		if s.err == nil {
			t.Fatal("256 MiB went to a client that reads nothing")
		}
		if s.since < d {
			t.Fatalf("the write failed (%v) %v after the last one that did not, before the send timeout %v", s.err, s.since, d)
		}
		return s
	case <-time.After(testTimeout):
		t.Fatalf("a write to a client that reads nothing had not failed after %v (send timeout %v)", testTimeout, d)
	}
	return stalled{}
}

// connectionEnds reads c to its end, which must come (EOF or a reset)
// before testTimeout: the server closed the connection.
func connectionEnds(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server did not close the connection whose write timed out")
	}
}

// stalledRequest serves h (which reports its writes' end on res) with a
// send timeout of d, asks it for a response from a client that reads
// nothing, and returns how the handler's writes ended (which waitStalled
// checks) and the client's connection.
func stalledRequest(t *testing.T, d time.Duration, bare bool, h func(w http.ResponseWriter, r *http.Request, res chan<- stalled)) (stalled, net.Conn) {
	t.Helper()
	res := make(chan stalled, 1)
	addr := serveSend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, res) }), d, bare)
	c := dialReceiving(t, addr, 4<<10)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	return waitStalled(t, res, d), c
}

// A response to a client that reads nothing fails once the send timeout
// has passed without a byte sent, and the connection is closed.
func TestSendTimeoutEndsAStalledResponse(t *testing.T) {
	const d = 300 * time.Millisecond
	for _, bare := range []bool{true, false} {
		t.Run("bare="+strconv.FormatBool(bare), func(t *testing.T) {
			_, c := stalledRequest(t, d, bare, func(w http.ResponseWriter, r *http.Request, res chan<- stalled) {
				writeUntilFailure(w, res)
			})
			connectionEnds(t, c)
		})
	}
}

// A client that reads slowly but steadily gets a response that takes many
// times the send timeout, and its connection serves the next request
// after idling for longer than the timeout.
func TestSendTimeoutSparesASlowReader(t *testing.T) {
	const d = 500 * time.Millisecond
	const size = 32 << 20
	body := make([]byte, size)
	for _, bare := range []bool{true, false} {
		t.Run("bare="+strconv.FormatBool(bare), func(t *testing.T) {
			addr := serveSend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body)
			}), d, bare)
			// 128 KiB reads 10 ms apart: 32 MiB take at least 2.5 s, and
			// the bytes queued in the sockets' buffers, which the server's
			// writes wait behind, drain well within d.
			c := dialReceiving(t, addr, 0)
			c.SetDeadline(time.Now().Add(4 * testTimeout))
			br := bufio.NewReaderSize(c, 128<<10)
			start := time.Now()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 128<<10)
			n := 0
			for n < size {
				time.Sleep(10 * time.Millisecond)
				m, err := res.Body.Read(buf)
				n += m
				if err != nil && n < size {
					t.Fatalf("the response broke off after %d of %d bytes, %v: %v", n, size, time.Since(start), err)
				}
			}
			if took := time.Since(start); took < 4*d {
				t.Fatalf("the response took %v: the reader was not slow enough to test anything", took)
			}
			time.Sleep(2 * d)
			io.WriteString(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the connection did not serve a request after idling for %v: %v", 2*d, err)
			}
			if n, err := io.Copy(io.Discard, res.Body); err != nil || n != size {
				t.Fatalf("second response: %d bytes, %v; want %d", n, err, size)
			}
		})
	}
}

// A handler that hijacks the connection keeps the send timeout: a tunnel
// to a client that stops reading is cut off too.
func TestSendTimeoutCoversHijackedConnections(t *testing.T) {
	const d = 300 * time.Millisecond
	for _, bare := range []bool{true, false} {
		t.Run("bare="+strconv.FormatBool(bare), func(t *testing.T) {
			s, c := stalledRequest(t, d, bare, func(w http.ResponseWriter, r *http.Request, res chan<- stalled) {
				c, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					res <- stalled{err: err, since: d}
					return
				}
				defer c.Close()
				writeUntilFailure(c, res)
			})
			if !errors.Is(s.err, os.ErrDeadlineExceeded) {
				t.Fatalf("the hijacked connection's write failed with %v, want a timeout", s.err)
			}
			connectionEnds(t, c)
		})
	}
}

// A write deadline that the handler sets replaces the send timeout.
func TestSendTimeoutGivesWayToAHandlersDeadline(t *testing.T) {
	const d = 200 * time.Millisecond
	const own = 1500 * time.Millisecond
	for _, bare := range []bool{true, false} {
		t.Run("bare="+strconv.FormatBool(bare), func(t *testing.T) {
			type result struct {
				err  error
				took time.Duration
			}
			done := make(chan result, 1)
			addr := serveSend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				if err := http.NewResponseController(w).SetWriteDeadline(start.Add(own)); err != nil {
					done <- result{err: err}
					return
				}
				res := make(chan stalled, 1)
				writeUntilFailure(w, res)
				done <- result{(<-res).err, time.Since(start)}
			}), d, bare)
			c := dialReceiving(t, addr, 4<<10)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			select {
			case r := <-done:
				if r.err == nil {
					t.Fatal("256 MiB went to a client that reads nothing")
				}
				// The deadline is exact; the send timeout would have
				// ended the writes 200 ms after the socket filled up.
				if r.took < own-50*time.Millisecond {
					t.Fatalf("the writes failed (%v) after %v, before the handler's deadline of %v", r.err, r.took, own)
				}
			case <-time.After(testTimeout):
				t.Fatalf("writes with a deadline of %v had not failed after %v", own, testTimeout)
			}
		})
	}
}

// A write to the client that fails, in a Flush as in a Write, ends the
// request's context at once: the proxy stops the backend's exchange even
// when the backend has nothing more to send (a quiet event stream), rather
// than at its next bytes.
func TestSendTimeoutEndsTheRequestContext(t *testing.T) {
	const d = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		chunk int // below outSize, the bytes go out in Flush
	}{{"flush", 1 << 10}, {"write", 64 << 10}} {
		for _, bare := range []bool{true, false} {
			t.Run(tc.name+"/bare="+strconv.FormatBool(bare), func(t *testing.T) {
				ended := make(chan error, 1)
				addr := serveSend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					buf := make([]byte, tc.chunk)
					f := w.(http.Flusher)
					for range (256 << 20) / tc.chunk {
						_, err := w.Write(buf)
						f.Flush()
						if r.Context().Err() != nil {
							ended <- nil
							return
						}
						if err != nil {
							ended <- errors.New("a write failed and the request's context goes on")
							return
						}
					}
					ended <- errors.New("256 MiB went to a client that reads nothing")
				}), d, bare)
				c := dialReceiving(t, addr, 4<<10)
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				select {
				case err := <-ended:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(testTimeout):
					t.Fatalf("a stream to a client that reads nothing had not ended after %v (send timeout %v)", testTimeout, d)
				}
			})
		}
	}
}

// A write deadline that the handler clears from another goroutine while a
// write waits under it gives that write the send timeout, from then: the
// write does not wait for good.
func TestSendTimeoutAfterADeadlineClearedDuringAWrite(t *testing.T) {
	const d = 300 * time.Millisecond
	for _, bare := range []bool{true, false} {
		t.Run("bare="+strconv.FormatBool(bare), func(t *testing.T) {
			var cleared atomic.Int64 // Unix nanoseconds
			s, c := stalledRequest(t, d, bare, func(w http.ResponseWriter, r *http.Request, res chan<- stalled) {
				rc := http.NewResponseController(w)
				if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
					res <- stalled{err: err}
					return
				}
				timer := time.AfterFunc(3*d, func() {
					cleared.Store(time.Now().UnixNano())
					rc.SetWriteDeadline(time.Time{})
				})
				defer timer.Stop()
				writeUntilFailure(w, res)
			})
			if cleared.Load() == 0 {
				t.Fatalf("the write failed (%v) before the handler's deadline was cleared", s.err)
			}
			if since := time.Since(time.Unix(0, cleared.Load())); since < d {
				t.Fatalf("the write failed %v after the deadline was cleared, before the send timeout %v", since, d)
			}
			connectionEnds(t, c)
		})
	}
}

// Clearing a write deadline that is not set, from another goroutine and
// however often, does not push back the send timeout of a write that
// waits.
func TestSendTimeoutNotPushedBackByClears(t *testing.T) {
	const d = 300 * time.Millisecond
	for _, bare := range []bool{true, false} {
		t.Run("bare="+strconv.FormatBool(bare), func(t *testing.T) {
			_, c := stalledRequest(t, d, bare, func(w http.ResponseWriter, r *http.Request, res chan<- stalled) {
				rc := http.NewResponseController(w)
				ticker := time.NewTicker(d / 3)
				done := make(chan struct{})
				defer func() { ticker.Stop(); close(done) }()
				go func() {
					for {
						select {
						case <-ticker.C:
							rc.SetWriteDeadline(time.Time{})
						case <-done:
							return
						}
					}
				}()
				writeUntilFailure(w, res)
			})
			connectionEnds(t, c)
		})
	}
}
