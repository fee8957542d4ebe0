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
)

// A client that asks for a large response and reads none of it is cut
// off after --client-send-timeout without a byte taken: cutover closes
// its connection and the backend's, which frees the backend (its write
// fails) instead of being held for as long as the client likes. The
// backend is not blamed. Over cutover's own HTTP server, --net-http's,
// and HTTPS.
func TestClientSendTimeoutFreesTheBackend(t *testing.T) {
	const timeout = 500 * time.Millisecond
	type ended struct {
		err   error
		after time.Duration
	}
	backendEnded := make(chan ended, 1)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		// At most 1 GiB, 64 KiB at a time, until a write fails.
		buf := make([]byte, 64<<10)
		start := time.Now()
		for range 1 << 14 {
			if _, err := w.Write(buf); err != nil {
				backendEnded <- ended{err, time.Since(start)}
				return
			}
		}
		backendEnded <- ended{nil, time.Since(start)}
	}))
	t.Cleanup(back.Close)
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "app", 1, "app.test")
	yaml := fmt.Sprintf("services:\n  web:\n    host: app.test\n    backends: [%s]\n", back.Listener.Addr())
	for _, tt := range []struct {
		name  string
		args  []string
		https bool
	}{
		{"cutover", nil, false},
		{"net-http", []string{"--net-http"}, false},
		{"https", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
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
				tc := tls.Client(c, &tls.Config{ServerName: "app.test", RootCAs: ca.pool(), NextProtos: []string{"http/1.1"}})
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				tc.SetDeadline(time.Time{})
				c = tc
			}
			io.WriteString(c, "GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
			// The client reads nothing; the sockets' buffers fill up, then
			// cutover's write waits for the timeout.
			select {
			case e := <-backendEnded:
				if e.err == nil {
					t.Fatal("1 GiB went through to a client that reads nothing")
				}
				t.Logf("backend's write failed after %v: %v", e.after.Round(time.Millisecond), e.err)
			case <-time.After(20 * time.Second):
				t.Fatalf("the backend was still writing to a client that reads nothing after 20 s (--client-send-timeout %v)", timeout)
			}
			// The client's connection was closed: what it holds is
			// followed by its end.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("cutover kept the connection of the client whose write timed out")
			}
			eventually(t, 5*time.Second, func() error {
				if n := metricValue(t, in, "cutover_backend_inflight", map[string]string{"service": "web", "backend": back.Listener.Addr().String()}); n != 0 {
					return fmt.Errorf("backend in flight %v, want 0", n)
				}
				return nil
			})
			// A write to the client failed, not the backend.
			if up := metricValue(t, in, "cutover_backend_up", map[string]string{"service": "web", "backend": back.Listener.Addr().String()}); up != 1 {
				t.Errorf("cutover_backend_up = %v after the client's timeout, want 1", up)
			}
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
