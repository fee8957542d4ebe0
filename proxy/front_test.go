package proxy

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/proxy/front"
)

// backendAnswers are raw answers of a backend, by request path, for
// TestProxyBehindFrontAnswersAsBehindNetHTTP.
var backendAnswers = map[string]string{
	"/304-length":  "HTTP/1.1 304 Not Modified\r\nEtag: \"v1\"\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n",
	"/204-length":  "HTTP/1.1 204 No Content\r\nContent-Length: 12\r\n\r\n",
	"/gzip":        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff0123456789",
	"/no-type":     "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n<html>hi</html",
	"/chunked":     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
	"/chunked-big": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + strings.Repeat("z", 4096) + "\r\n0\r\n\r\n",
	"/close":       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
	"/hop":         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
	"/created":     "HTTP/1.1 201 Created\r\nLocation: /x/1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"/early-hints": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
	"/head":        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99\r\n\r\n",
	"/ok":          okResponse,
}

// The proxy behind front.Server answers what it answers behind net/http's
// server, for backend answers that test how responses are written:
// status, header fields but Date, body, trailers, and whether the
// client's connection carries the next request.
func TestProxyBehindFrontAnswersAsBehindNetHTTP(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, backendAnswers[req.URL.Path])
			if req.URL.Path == "/close" {
				return
			}
		}
	})
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", rb.addr()))))
	behindFront := serveFront(t, h.p)
	for _, path := range slices.Sorted(maps.Keys(backendAnswers)) {
		method := "GET"
		if path == "/head" {
			method = "HEAD"
		}
		want := exchangeTwice(t, h.front.Listener.Addr().String(), method, path)
		got := exchangeTwice(t, behindFront, method, path)
		if got != want {
			t.Errorf("%s %s:\nbehind net/http:\n%s\nbehind front:\n%s", method, path, want, got)
		}
	}
}

// serveFront serves p with a front.Server until the test ends.
func serveFront(t *testing.T, p http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &front.Server{Handler: p, Fallback: &http.Server{Handler: p, ReadHeaderTimeout: testTimeout}}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

// exchangeTwice sends the request, then a GET /ok on the same connection
// if it stays open, and describes both answers.
func exchangeTwice(t *testing.T, addr, method, path string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: app.test\r\n\r\n", method, path)
	var sb strings.Builder
	describeAnswer(&sb, br, method)
	fmt.Fprintf(c, "GET /ok HTTP/1.1\r\nHost: app.test\r\n\r\n")
	describeAnswer(&sb, br, "GET")
	return sb.String()
}

func describeAnswer(sb *strings.Builder, br *bufio.Reader, method string) {
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		fmt.Fprintf(sb, "no response: %v\n", err)
		return
	}
	body, err := io.ReadAll(res.Body)
	fmt.Fprintf(sb, "%s, body %q (%v), close %v, chunked %v\n", res.Status, body, err, res.Close, slices.Contains(res.TransferEncoding, "chunked"))
	res.Header.Del("Date")
	for _, k := range slices.Sorted(maps.Keys(res.Header)) {
		fmt.Fprintf(sb, "  %s: %q\n", k, res.Header[k])
	}
	for _, k := range slices.Sorted(maps.Keys(res.Trailer)) {
		fmt.Fprintf(sb, "  trailer %s: %q\n", k, res.Trailer[k])
	}
}

// A client of front.Server that goes away while the backend holds its
// answer ends the request (and the backend's) within a watch tick or so:
// the connection's context ends, and its Hook stops the fast path's read.
func TestClientGoneBehindFront(t *testing.T) {
	g, srv := gatedBackend(t, "a")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))
	returned := make(chan struct{}, 1)
	addr := serveFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		h.p.ServeHTTP(w, r)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	g.waitArrived(t)
	began := time.Now()
	c.Close()
	select {
	case <-returned:
	case <-time.After(testTimeout):
		t.Fatal("the request went on after its client closed the connection")
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("the request ended %v after its client went, want about a watch tick (200 ms)", d)
	}
	if n := h.metric("cutover_requests_total", "service", "app", "code", "499", "method", "GET"); n != 1 {
		t.Errorf("requests_total{code=499} = %v, want 1", n)
	}
	if b := h.p.Backend("app", "a"); b.Failures() != 0 || b.InFlight() != 0 {
		t.Errorf("backend: %d failures, %d in flight; want 0, 0", b.Failures(), b.InFlight())
	}
}
