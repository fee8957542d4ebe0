package front

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 5 * time.Second

// start serves h with a front.Server on a new listener until the test
// ends; configure may change the fallback's settings first.
func start(t *testing.T, h http.Handler, configure ...func(*http.Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second}
	for _, c := range configure {
		c(fb)
	}
	// Every connection accepted bare; those from the listener's Accept
	// (netAccept) are net.TCPConns, which TestStrictMatchesNetHTTP covers
	// too.
	s := &Server{Handler: h, Fallback: fb}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// dial opens a raw connection with a deadline.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return c, bufio.NewReader(c)
}

// readResponse reads one response to method and its whole body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, string(body)
}

func echoPath(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, r.Method+" "+r.Host+" "+r.URL.Path+"?"+r.URL.RawQuery)
}

// Simple requests on one connection, pipelined or not, are served by
// Server itself, in order, with the request as net/http would give it.
func TestServesPipelinedRequestsItself(t *testing.T) {
	var got []*http.Request
	var mu sync.Mutex
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		echoPath(w, r)
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /a?x=1 HTTP/1.1\r\nHost: app.test\r\nX-Two: 1\r\nx-two: 2\r\n\r\n"+
		"HEAD /b HTTP/1.1\r\nHost: app.test\r\n\r\nGET /c%20d HTTP/1.1\r\nHost: app.test:8080\r\n\r\n")
	for _, want := range []struct{ method, body string }{
		{"GET", "GET app.test /a?x=1"}, {"HEAD", ""}, {"GET", "GET app.test:8080 /c d?"},
	} {
		res, body := readResponse(t, br, want.method)
		if res.StatusCode != 200 || body != want.body || res.Header.Get("Date") == "" {
			t.Errorf("%s: %s %q (Date %q), want 200 %q", want.method, res.Status, body, res.Header.Get("Date"), want.body)
		}
	}
	if s.Served() != 3 || s.HandedOver() != 0 {
		t.Errorf("served %d, handed over %d; want 3 and 0", s.Served(), s.HandedOver())
	}
	r := got[0]
	if r.Header["Host"] != nil || strings.Join(r.Header["X-Two"], ",") != "1,2" || r.Body != http.NoBody ||
		r.RemoteAddr != c.LocalAddr().String() || r.RequestURI != "/a?x=1" || r.Proto != "HTTP/1.1" {
		t.Errorf("request as the handler saw it: %+v", r)
	}
}

// A request Server does not take goes to the fallback with the rest of
// its connection, pipelined bytes included.
func TestHandsOverWithBufferedBytes(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET ", "POST hello", "GET "} {
		if res, body := readResponse(t, br, "GET"); body != want {
			t.Errorf("got %s %q, want %q", res.Status, body, want)
		}
	}
	if s.Served() != 1 || s.HandedOver() != 1 {
		t.Errorf("served %d, handed over %d; want 1 and 1", s.Served(), s.HandedOver())
	}
}

// A client that goes away during a long request ends the request's
// context; one that stays does not.
func TestLongRequestSeesClientGo(t *testing.T) {
	canceled := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(3 * watchTick):
			canceled <- nil
		}
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /stay HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := <-canceled; err != nil {
		t.Fatalf("a client that stayed: context ended with %v", err)
	}
	readResponse(t, br, "GET")
	io.WriteString(c, "GET /go HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("a client that went away: context ended with %v, want context.Canceled", err)
	}
}

// A client that half-closes after its requests gets every answer, as
// from net/http: the close, read during a long request, ends the
// connection's context (the requests sent before the close start with it
// ended, as with net/http), not the responses.
func TestHalfClosedClientGetsItsResponses(t *testing.T) {
	ended := make(chan error, 2)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select { // until the watch reads the close
			case <-r.Context().Done():
			case <-time.After(testTimeout):
			}
		}
		ended <- r.Context().Err()
		echoPath(w, r)
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	for _, want := range []string{"GET a /slow?", "GET a /next?"} {
		if res, body := readResponse(t, br, "GET"); body != want {
			t.Errorf("got %s %q, want %q", res.Status, body, want)
		}
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the long request's context ended with %v, want context.Canceled", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the next request's context at its start: %v, want context.Canceled", err)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the responses: read %d bytes, %v; want the close", n, err)
	}
}

// A request pipelined behind a long one, whose first bytes the watch
// read, is served after it.
func TestPipelinedBehindALongRequest(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchTick)
		}
		echoPath(w, r)
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(2 * watchTick)
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET a /slow?", "GET a /next?"} {
		if res, body := readResponse(t, br, "GET"); body != want {
			t.Errorf("got %s %q, want %q", res.Status, body, want)
		}
	}
}

// How responses are framed: Content-Length from the handler, else
// chunked with trailers, else a length of 0; bodies of HEAD dropped,
// of 204 refused; a body shorter than announced closes the connection.
func TestResponseFraming(t *testing.T) {
	writeErr := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part1 ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		case "/empty":
			w.WriteHeader(http.StatusAccepted)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "x")
			writeErr <- err
		case "/short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "short")
		}
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /length HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /empty HTTP/1.1\r\nHost: a\r\n\r\nHEAD /length HTTP/1.1\r\nHost: a\r\n\r\nGET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n")
	res, body := readResponse(t, br, "GET")
	if res.ContentLength != 5 || body != "hello" || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("/length: %d %q %v", res.ContentLength, body, res.Header)
	}
	res, body = readResponse(t, br, "GET")
	if res.ContentLength != -1 || body != "part1 part2" || res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Late") != "yes" {
		t.Errorf("/chunked: %d %q trailers %v", res.ContentLength, body, res.Trailer)
	}
	res, body = readResponse(t, br, "GET")
	if res.StatusCode != 202 || res.ContentLength != 0 || body != "" {
		t.Errorf("/empty: %s %d %q", res.Status, res.ContentLength, body)
	}
	res, body = readResponse(t, br, "HEAD")
	if res.StatusCode != 200 || res.ContentLength != 5 || body != "" {
		t.Errorf("HEAD /length: %s %d %q", res.Status, res.ContentLength, body)
	}
	res, _ = readResponse(t, br, "GET")
	if err := <-writeErr; res.StatusCode != 204 || !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Errorf("/nocontent: %s, write: %v", res.Status, err)
	}
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res.Body); string(b) != "short" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("/short: %q, %v; want \"short\" and an unexpected EOF", b, err)
	}
}

// Connection: close from the client is answered with it, and the
// connection closes.
func TestConnectionClose(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echoPath))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if res, _ := readResponse(t, br, "GET"); !res.Close {
		t.Errorf("response without Connection: close: %v", res.Header)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the response: %v, want EOF", err)
	}
}

// A handler's panic ends the connection: logged, unless it is
// http.ErrAbortHandler; what the handler flushed before is out, as with
// net/http.
func TestHandlerPanics(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "cut")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), func(s *http.Server) { s.ErrorLog = log.New(lockedWriter{&mu, &logged}, "", 0) })
	for _, path := range []string{"/abort", "/boom"} {
		c, br := dial(t, addr)
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if b, err := io.ReadAll(res.Body); string(b) != "cut" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %q, %v; want \"cut\" and an unexpected EOF", path, b, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "http: panic serving"); n != 1 || !strings.Contains(logged.String(), "boom") {
		t.Errorf("logged %d panics, want the one of /boom:\n%s", n, logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Shutdown closes idle connections, lets a request in progress finish
// with Connection: close, and returns once it is done.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		echoPath(w, r)
	}))
	idle, idleBR := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, idleBR, "GET")
	busy, busyBR := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	done := shutdownAsync(s)
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection at shutdown: %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if res, body := readResponse(t, busyBR, "GET"); !res.Close || body != "GET a /slow?" {
		t.Errorf("request in progress at shutdown: %q, Connection: close %v", body, res.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}

// Cleartext HTTP/2 with prior knowledge goes to the fallback, which
// serves it when it is configured to.
func TestH2CGoesToFallback(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), func(fb *http.Server) {
		fb.Protocols = new(http.Protocols)
		fb.Protocols.SetHTTP1(true)
		fb.Protocols.SetUnencryptedHTTP2(true)
	})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: testTimeout}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); string(b) != "HTTP/2.0" || s.HandedOver() != 1 {
		t.Errorf("h2c: %q, handed over %d; want HTTP/2.0 and 1", b, s.HandedOver())
	}
}

// shutdownAsync runs s.Shutdown, bounded by testTimeout, and delivers its
// result.
func shutdownAsync(s *Server) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	return done
}
