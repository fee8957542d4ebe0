package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client that half-closes ends its request's context, behind net/http's
// server as behind front's, and the proxy gives up the backend exchange
// (nginx's 499). The client may still read, and what it reads must not
// pass for a response: before the response started it gets none (not an
// empty 200), and a body cut short stays cut short (not a chunked body
// ended early).
func TestHalfClosedClientGetsNoFalseResponse(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "part one")
			w.(http.Flusher).Flush()
		}
		select { // until the proxy gives up the exchange
		case <-r.Context().Done():
		case <-time.After(testTimeout):
		}
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", backend))))
	servers := map[string]string{"net/http": h.front.Listener.Addr().String(), "front": serveFront(t, h.p)}
	for name, addr := range servers {
		t.Run(name+"/before the response", func(t *testing.T) {
			c, br := dialRaw(t, addr)
			io.WriteString(c, "GET /late HTTP/1.1\r\nHost: app.test\r\n\r\n")
			c.CloseWrite()
			if res, err := http.ReadResponse(br, nil); err == nil {
				t.Fatalf("got a response %s, want none", res.Status)
			}
		})
		t.Run(name+"/during the body", func(t *testing.T) {
			c, br := dialRaw(t, addr)
			io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: app.test\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read the response's head: %v", err)
			}
			c.CloseWrite()
			if body, err := io.ReadAll(res.Body); err == nil {
				t.Errorf("read a whole body %q: one cut short passed for complete", body)
			}
		})
	}
	// Counted, for the two that ended before their response.
	if got := h.metric("cutover_requests_total", "service", "app", "code", "499", "method", "GET"); got != 2 {
		t.Errorf("requests counted with code 499: %v, want 2", got)
	}
}

// dialRaw opens a TCP connection to addr with a deadline.
func dialRaw(t *testing.T, addr string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return c.(*net.TCPConn), bufio.NewReader(c)
}
