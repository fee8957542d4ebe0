package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/cutoverproxy/cutover/internal/h2test"
)

// A client that asks for a large response and reads none of it is cut
// off after --client-send-timeout without a byte taken: cutover closes
// its connection (over HTTP/2, or resets its stream, whichever bound
// comes first) and the backend's, which frees the backend (its write
// fails) instead of being held for as long as the client likes. The
// backend is not blamed. Over cutover's own HTTP server, --net-http's,
// HTTPS with HTTP/1.1 and HTTP/2, and h2c; the HTTP/2 client grants all
// the flow-control window it can, so that only the socket holds cutover
// back.
func TestClientSendTimeoutFreesTheBackend(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "app", 1, "app.test")
	for _, tt := range []struct {
		name  string
		args  []string
		https bool
		h2    bool
	}{
		{"cutover", nil, false, false},
		{"net-http", []string{"--net-http"}, false, false},
		{"https", nil, true, false},
		{"https-h2", nil, true, true},
		{"h2c", []string{"--h2c"}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			back, backendEnded := bigBackend(t)
			yaml := fmt.Sprintf("services:\n  web:\n    host: app.test\n    backends: [%s]\n", back.Listener.Addr())
			args := append([]string{"--client-send-timeout", timeout.String()}, tt.args...)
			var in *instance
			addr := ""
			if tt.https {
				in, addr = startTLS(t, yaml, dir, args...)
			} else {
				in = start(t, yaml, args...)
				addr = strings.TrimPrefix(in.http, "http://")
			}
			c := dialSmallWindow(t, addr)
			if tt.https {
				proto := "http/1.1"
				if tt.h2 {
					proto = "h2"
				}
				tc := tls.Client(c, &tls.Config{ServerName: "app.test", RootCAs: ca.pool(), NextProtos: []string{proto}})
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				if got := tc.ConnectionState().NegotiatedProtocol; got != proto {
					t.Fatalf("negotiated %q, want %q", got, proto)
				}
				tc.SetDeadline(time.Time{})
				c = tc
			}
			if tt.h2 {
				scheme := "http"
				if tt.https {
					scheme = "https"
				}
				askH2WithAllTheWindow(t, c, scheme, "app.test", "/big")
			} else {
				io.WriteString(c, "GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
			}
			// The client reads nothing; the sockets' buffers fill up, then
			// cutover's write waits for the timeout.
			waitBackendCutOff(t, backendEnded, timeout)
			// The client's connection was closed, or, over HTTP/2, its
			// stream reset: what it holds is followed by that end. (The
			// stream's own bound, at the timeout, comes first when the
			// socket still takes bytes, slowly, as its buffer grows: the
			// connection then has nothing more to write.)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			switch err := readToTheEnd(c, tt.h2); {
			case errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatal("cutover kept the connection of the client whose write timed out, and its stream")
			case err == nil:
				t.Log("ended by the stream's reset")
			default:
				t.Logf("ended by the connection's close: %v", err)
			}
			assertBackendFreedNotBlamed(t, in, back)
			base, client := in.http, &http.Client{Timeout: 5 * time.Second}
			if tt.https {
				base, client = "https://app.test", httpsClient(ca, addr)
			}
			code, _, _, err := getVia(client, base, "app.test", "/small")
			if err != nil || code != 200 {
				t.Fatalf("a request after the timeout: %d %v", code, err)
			}
		})
	}
}

// An HTTP/2 client that reads its connection (and answers pings) but
// grants one stream no flow-control window is cut off on that stream
// after --client-send-timeout: cutover resets the stream and frees the
// backend, which is not blamed, and the connection's other streams go on.
// The connection's writes never wait here, so only the bound on the
// stream's writes (internal/sendtimeout.Streams) can end it. Over HTTPS
// and h2c.
func TestClientSendTimeoutEndsAStarvedHTTP2Stream(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "app", 1, "app.test")
	for _, tt := range []struct {
		name  string
		https bool
	}{{"https-h2", true}, {"h2c", false}} {
		t.Run(tt.name, func(t *testing.T) {
			back, backendEnded := bigBackend(t)
			yaml := fmt.Sprintf("services:\n  web:\n    host: app.test\n    backends: [%s]\n", back.Listener.Addr())
			args := []string{"--client-send-timeout", timeout.String()}
			var in *instance
			addr, scheme := "", "https"
			if tt.https {
				in, addr = startTLS(t, yaml, dir, args...)
			} else {
				in = start(t, yaml, append(args, "--h2c")...)
				addr, scheme = strings.TrimPrefix(in.http, "http://"), "http"
			}
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if tt.https {
				tc := tls.Client(c, &tls.Config{ServerName: "app.test", RootCAs: ca.pool(), NextProtos: []string{"h2"}})
				if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != "h2" {
					t.Fatalf("handshake: %v, protocol %q", err, tc.ConnectionState().NegotiatedProtocol)
				}
				c = tc
			}
			hc := h2test.NewClient(t, c, scheme, 0)
			hc.Get(1, "app.test", "/big")
			waitBackendCutOff(t, backendEnded, timeout)
			if ev, data := hc.Until(1, 10*time.Second); ev.Type != http2.FrameRSTStream || data != "" {
				t.Fatalf("stream 1 ended with %v after %d bytes, want RST_STREAM and none", ev.Type, len(data))
			}
			assertBackendFreedNotBlamed(t, in, back)
			// The same connection serves the next stream.
			hc.Get(3, "app.test", "/small")
			hc.Grant(3, 1<<20)
			if ev, data := hc.Until(3, 10*time.Second); !ev.End || data != "small" {
				t.Fatalf("stream 3 after the reset: %q, ended %v; want small and its end", data, ev.End)
			}
		})
	}
}

// waitBackendCutOff waits for bigBackend's large response to end and
// checks that its write failed (1 GiB did not go through to a client that
// takes nothing) and no sooner than the send timeout: the backend began
// before cutover's write waited.
func waitBackendCutOff(t *testing.T, ended <-chan backendEnd, timeout time.Duration) {
	t.Helper()
	select {
	case e := <-ended:
		if e.err == nil {
			t.Fatal("1 GiB went through to a client that takes nothing")
		}
		if e.after < timeout {
			t.Fatalf("the backend's write failed (%v) %v after it began, before the send timeout %v", e.err, e.after, timeout)
		}
		t.Logf("backend's write failed after %v: %v", e.after.Round(time.Millisecond), e.err)
	case <-time.After(20 * time.Second):
		t.Fatalf("the backend was still writing to a client that takes nothing after 20 s (--client-send-timeout %v)", timeout)
	}
}

// assertBackendFreedNotBlamed checks that service web's backend back has
// no request in flight any more, and is up: a write to the client failed,
// not the backend.
func assertBackendFreedNotBlamed(t *testing.T, in *instance, back *httptest.Server) {
	t.Helper()
	labels := map[string]string{"service": "web", "backend": back.Listener.Addr().String()}
	eventually(t, 5*time.Second, func() error {
		if n := metricValue(t, in, "cutover_backend_inflight", labels); n != 0 {
			return fmt.Errorf("backend in flight %v, want 0", n)
		}
		return nil
	})
	if up := metricValue(t, in, "cutover_backend_up", labels); up != 1 {
		t.Errorf("cutover_backend_up = %v after the client's timeout, want 1", up)
	}
}

// readToTheEnd reads c until it ends or, when h2 is set, until a
// RST_STREAM frame for stream 1, and returns what ended the read: nil for
// the frame.
func readToTheEnd(c net.Conn, h2 bool) error {
	if !h2 {
		_, err := io.Copy(io.Discard, c)
		return err
	}
	fr := http2.NewFramer(nil, c)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
			return nil
		}
	}
}

// backendEnd is how a backend's large response ended: its write's error
// (nil when it all went out) and when, from the response's start.
type backendEnd struct {
	err   error
	after time.Duration
}

// bigBackend serves /big, at most 1 GiB written until a write fails, and
// reports its end; other paths get a small body.
func bigBackend(t *testing.T) (*httptest.Server, <-chan backendEnd) {
	t.Helper()
	ended := make(chan backendEnd, 1)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		buf := make([]byte, 64<<10)
		start := time.Now()
		for range 1 << 14 {
			if _, err := w.Write(buf); err != nil {
				ended <- backendEnd{err, time.Since(start)}
				return
			}
		}
		ended <- backendEnd{nil, time.Since(start)}
	}))
	t.Cleanup(back.Close)
	return back, ended
}

// askH2WithAllTheWindow starts HTTP/2 on c, grants the largest windows
// there are (connection and stream), and asks for path: from then on the
// server may send until the socket is full.
func askH2WithAllTheWindow(t *testing.T, c net.Conn, scheme, host, path string) {
	t.Helper()
	if err := errors.Join(h2test.Start(c, 1<<31-1), h2test.Get(http2.NewFramer(c, nil), 1, scheme, host, path)); err != nil {
		t.Fatal(err)
	}
}

// dialSmallWindow connects to addr with a 4 KiB receive buffer, so that
// a client that reads nothing stops the sender soon.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
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
