package front

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file holds Server to net/http's answers. The same raw bytes are
// written to a plain net/http server and to a Server in front of an
// identical one, and what comes back must match. Server parses a strict
// subset itself and hands the rest to net/http, so a difference means it
// took on a request net/http answers otherwise, or answered one of its own
// differently.

const (
	// serverTimeout is every server's ReadHeaderTimeout and IdleTimeout.
	serverTimeout = 2 * time.Second
	// quietWait is how long a client waits for answers. It is half of
	// serverTimeout so that a connection still open at its end is one the
	// server keeps, not one a timeout is about to close: with equal times,
	// which came first would be a race.
	quietWait = serverTimeout / 2
	// timeoutWait outlasts serverTimeout, for the cases about timeouts.
	timeoutWait = serverTimeout + time.Second
	// host is the Host line of most cases.
	host = "Host: example.com"
)

// strictCase is a byte stream a client writes on a fresh connection.
type strictCase struct {
	name string
	// request is written at once.
	request string
	// after is written once the first response has been read: the body
	// of a request that waits for 100 Continue.
	after string
	// method is what the responses answer, for their framing. Empty
	// means GET.
	method string
	// wait is how long the client waits for answers. Zero means quietWait.
	wait time.Duration
	// byteByByte writes one byte at a time, each in its own TCP segment
	// (Go sets TCP_NODELAY), so the server's reads end anywhere.
	byteByByte bool
}

// strictRun is one case in one mode, and what both servers answered.
type strictRun struct {
	c strictCase
	// closeWrite says the client half-closes once it wrote everything.
	closeWrite         bool
	plain, front       side
	plainErr, frontErr error
}

func TestStrictMatchesNetHTTP(t *testing.T) {
	h := http.HandlerFunc(describe)
	plain := servePlain(t, h)
	_, front := serveFront(t, h)
	runs := strictRuns(t)
	// The exchanges run here, many at once, rather than as parallel
	// subtests: -parallel defaults to GOMAXPROCS, and most exchanges spend
	// quietWait waiting for nothing. Not all at once, though: under -race
	// on two CPUs, hundreds of connections at once delay answers by most
	// of quietWait. The longest waits start first.
	order := make([]*strictRun, len(runs))
	for i := range runs {
		order[i] = &runs[i]
	}
	slices.SortStableFunc(order, func(a, b *strictRun) int { return cmp.Compare(b.c.wait, a.c.wait) })
	slots := make(chan struct{}, 16*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, r := range order {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			r.exchange(plain, front)
		})
	}
	wg.Wait()
	for _, r := range runs {
		t.Run(r.name(), r.check)
	}
}

// strictRuns is every case, with the client keeping its side open and
// with the client half-closing it.
func strictRuns(t *testing.T) []strictRun {
	var runs []strictRun
	seen := make(map[string]bool)
	groups := [][]strictCase{connectionCases(), bodyCases(), smugglingCases(), headerCases(), hostCases(), targetCases()}
	for _, c := range slices.Concat(groups...) {
		if seen[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		seen[c.name] = true
		runs = append(runs, strictRun{c: c}, strictRun{c: c, closeWrite: true})
	}
	return runs
}

// exchange runs r on both servers at once.
func (r *strictRun) exchange(plain, front string) {
	var wg sync.WaitGroup
	wg.Go(func() { r.plain, r.plainErr = exchange(plain, r.c, r.closeWrite) })
	wg.Go(func() { r.front, r.frontErr = exchange(front, r.c, r.closeWrite) })
	wg.Wait()
}

func (r *strictRun) name() string {
	if r.closeWrite {
		return r.c.name + "/half-closed"
	}
	return r.c.name + "/kept-open"
}

func (r *strictRun) check(t *testing.T) {
	if err := errors.Join(r.plainErr, r.frontErr); err != nil {
		t.Fatal(err)
	}
	t.Logf("net/http: %s", r.plain.summary())
	if d := r.plain.diff(r.front); len(d) > 0 {
		t.Errorf("%s\nrequest (%d bytes):%s\ndifferences:\n  %s\nnet/http answered %s\nfront answered %s",
			r.name(), len(r.c.request+r.c.after), quoted(r.c.request+r.c.after),
			strings.Join(d, "\n  "), r.plain.full(), r.front.full())
	}
}

// TestStrictServesSimpleRequestsItself checks that Server takes the
// requests it is meant for and hands over the others: the differential
// test would also pass with a Server that hands over everything.
func TestStrictServesSimpleRequestsItself(t *testing.T) {
	srv, addr := serveFront(t, http.HandlerFunc(describe))
	steps := []struct {
		c                  strictCase
		served, handedOver uint64 // how much Served and HandedOver grow
	}{
		{strictCase{name: "get", request: get("/")}, 1, 0},
		{strictCase{name: "three pipelined gets", request: get("/1") + get("/2") + get("/3")}, 3, 0},
		{strictCase{name: "head", request: head("HEAD / HTTP/1.1", host), method: "HEAD"}, 1, 0},
		{strictCase{name: "post with a body", request: post("hello", "Content-Length: 5")}, 0, 1},
	}
	for _, st := range steps {
		served, handedOver := srv.Served(), srv.HandedOver()
		// The client half-closes and reads until the server closes: by
		// then the server is done with the connection and its counters.
		s, err := exchange(addr, st.c, true)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Count(st.c.request, " HTTP/1.1\r\n")
		if !s.closed || s.err != "" || len(s.responses) != want {
			t.Fatalf("%s: want %d responses and a close, got %s", st.c.name, want, s.full())
		}
		if got := srv.Served() - served; got != st.served {
			t.Errorf("%s: Served grew by %d, want %d", st.c.name, got, st.served)
		}
		if got := srv.HandedOver() - handedOver; got != st.handedOver {
			t.Errorf("%s: HandedOver grew by %d, want %d", st.c.name, got, st.handedOver)
		}
	}
}

// describe answers with everything of the request a handler can see, in a
// canonical order: two servers given the same bytes answer the same body.
func describe(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "method %q\nrequest-uri %q\nurl %q\n", r.Method, r.RequestURI, r.URL.String())
	fmt.Fprintf(&b, "path %q raw-path %q raw-query %q\n", r.URL.Path, r.URL.RawPath, r.URL.RawQuery)
	fmt.Fprintf(&b, "host %q\nproto %q %d.%d\nclose %t\n", r.Host, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Close)
	fmt.Fprintf(&b, "content-length %d\ntransfer-encoding %q\n", r.ContentLength, r.TransferEncoding)
	writeSorted(&b, "header", r.Header)
	fmt.Fprintf(&b, "body %q error %v\n", body, err)
	writeSorted(&b, "trailer", r.Trailer)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

func writeSorted(b *strings.Builder, what string, h http.Header) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(b, "%s %q: %q\n", what, k, h[k])
	}
}

// netHTTPServer is how both sides configure net/http.
func netHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serverTimeout,
		IdleTimeout:       serverTimeout,
		MaxHeaderBytes:    1 << 20,
		// What net/http logs (a TLS handshake, a panic) has no bearing
		// on the comparison.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// servePlain serves h with net/http alone until the test ends, and returns
// its address.
func servePlain(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := netHTTPServer(h)
	return serveOn(t, "net/http", srv.Serve, srv.Close)
}

// serveFront serves h with a Server in front of net/http until the test
// ends.
func serveFront(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	srv := &Server{Handler: h, Fallback: netHTTPServer(h)}
	return srv, serveOn(t, "front", srv.Serve, srv.Close)
}

// serveOn runs serve on a fresh loopback listener, stops it with stop when
// the test ends, and checks that serve then returned http.ErrServerClosed.
func serveOn(t *testing.T, name string, serve func(net.Listener) error, stop func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("%s: Serve returned %v, want http.ErrServerClosed", name, err)
		}
	})
	return ln.Addr().String()
}

// side is what a client saw on one connection.
type side struct {
	responses []answer
	// closed says the server closed the connection before the client
	// stopped waiting.
	closed bool
	// err is what else stopped the reading: a response cut short or
	// malformed.
	err string
	// raw is every byte read, for the report.
	raw []byte
}

// answer is one response, as far as the comparison goes.
type answer struct {
	status string
	proto  string
	header http.Header // without Transfer-Encoding; Date's value replaced
	body   string
	err    string // from reading the body
}

// exchange writes c on a fresh connection to addr and reads every response
// until the server closes the connection or c's wait ends.
func exchange(addr string, c strictCase, closeWrite bool) (side, error) {
	conn, err := net.DialTimeout("tcp", addr, quietWait)
	if err != nil {
		return side{}, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	// One deadline bounds every read and write of the exchange.
	wait := cmp.Or(c.wait, quietWait)
	if err := conn.SetDeadline(time.Now().Add(wait)); err != nil {
		return side{}, fmt.Errorf("set deadline: %w", err)
	}
	answered := make(chan struct{})
	var once sync.Once
	first := func() { once.Do(func() { close(answered) }) }
	var wg sync.WaitGroup
	wg.Go(func() { writeCase(conn.(*net.TCPConn), c, closeWrite, answered) })
	rec := &recorder{r: conn}
	s := readResponses(rec, cmp.Or(c.method, http.MethodGet), first)
	first()
	conn.Close()
	wg.Wait()
	s.raw = rec.buf.Bytes()
	return s, nil
}

// writeCase writes c, its after part once answered is closed, and then
// half-closes if asked. Write errors are left out: a server may answer and
// close before it read everything (a head too large), and the responses
// tell.
func writeCase(conn *net.TCPConn, c strictCase, closeWrite bool, answered <-chan struct{}) {
	write := func(s string) {
		if !c.byteByByte {
			io.WriteString(conn, s)
			return
		}
		for i := range len(s) {
			if _, err := io.WriteString(conn, s[i:i+1]); err != nil {
				return
			}
		}
	}
	write(c.request)
	if c.after != "" {
		<-answered
		write(c.after)
	}
	if closeWrite {
		conn.CloseWrite()
	}
}

// readResponses reads responses to method, calling first after each one,
// until reading fails.
func readResponses(rec *recorder, method string, first func()) side {
	var s side
	br := bufio.NewReader(rec)
	end := 0 // bytes of the complete responses
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			s.closed, s.err = ended(err, rec.buf.Len() > end)
			return s
		}
		body, err := io.ReadAll(resp.Body)
		s.responses = append(s.responses, newAnswer(resp, body, err))
		first()
		if err != nil {
			s.closed, s.err = ended(err, true)
			return s
		}
		end = rec.buf.Len() - br.Buffered()
	}
}

// ended tells from the error that stopped the reading whether the server
// closed the connection, and what else went wrong. partial says bytes of
// an incomplete response had arrived.
func ended(err error, partial bool) (closed bool, msg string) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		closed = false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		closed = true
	case errors.Is(err, syscall.ECONNRESET):
		// A server that closes with unread bytes in its buffer resets
		// the connection: for the client, that is a close too.
		closed = true
	default:
		return false, errText(err)
	}
	if partial {
		return closed, "a response cut short: " + errText(err)
	}
	return closed, ""
}

// errText is err without the addresses of the connection, which differ
// between the sides.
func errText(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "wait ended"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	if op, ok := errors.AsType[*net.OpError](err); ok {
		return op.Err.Error()
	}
	return err.Error()
}

func newAnswer(resp *http.Response, body []byte, err error) answer {
	h := resp.Header.Clone()
	if _, ok := h["Date"]; ok {
		h["Date"] = []string{"(present)"}
	}
	// Server may send chunked where net/http sends a Content-Length.
	delete(h, "Transfer-Encoding")
	a := answer{status: resp.Status, proto: resp.Proto, header: h, body: string(body)}
	if err != nil {
		a.err = errText(err)
	}
	return a
}

// recorder keeps every byte read through it.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

// diff lists how o differs from s: the number of responses, their status
// line, headers and body, and how the connection ended. A Content-Length
// on one side only is no difference (Server may send chunked where
// net/http counts), nor are Transfer-Encoding and the value of Date.
func (s side) diff(o side) []string {
	var d []string
	if s.closed != o.closed {
		d = append(d, fmt.Sprintf("server closed the connection: net/http %t, front %t", s.closed, o.closed))
	}
	if s.err != o.err {
		d = append(d, fmt.Sprintf("reading stopped on: net/http %q, front %q", s.err, o.err))
	}
	if len(s.responses) != len(o.responses) {
		return append(d, fmt.Sprintf("responses: net/http %d, front %d", len(s.responses), len(o.responses)))
	}
	for i, a := range s.responses {
		d = append(d, a.diff(o.responses[i], i+1)...)
	}
	return d
}

func (a answer) diff(b answer, n int) []string {
	var d []string
	add := func(what, x, y string) {
		if x != y {
			d = append(d, fmt.Sprintf("response %d %s: net/http %s, front %s", n, what, x, y))
		}
	}
	add("status", a.status, b.status)
	add("protocol", a.proto, b.proto)
	add("body error", a.err, b.err)
	keys := slices.Concat(slices.Collect(maps.Keys(a.header)), slices.Collect(maps.Keys(b.header)))
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		x, inA := a.header[k]
		y, inB := b.header[k]
		if k == "Content-Length" && inA != inB {
			continue
		}
		add("header "+k, fmt.Sprintf("%q", x), fmt.Sprintf("%q", y))
	}
	if a.body != b.body {
		line, x, y := firstDifference(a.body, b.body)
		add(fmt.Sprintf("body, line %d", line), fmt.Sprintf("%q", x), fmt.Sprintf("%q", y))
	}
	return d
}

// firstDifference returns the first line, counted from 1, where a and b
// differ, and that line of each.
func firstDifference(a, b string) (int, string, string) {
	la, lb := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	for i := 0; ; i++ {
		x, y := at(la, i), at(lb, i)
		if x != y || i >= len(la) {
			return i + 1, x, y
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

func (s side) summary() string {
	statuses := make([]string, len(s.responses))
	for i, a := range s.responses {
		statuses[i] = a.status
	}
	end := "kept the connection open"
	if s.closed {
		end = "closed the connection"
	}
	if s.err != "" {
		end += ", " + s.err
	}
	return fmt.Sprintf("%d responses [%s], %s", len(s.responses), strings.Join(statuses, "; "), end)
}

func (s side) full() string { return s.summary() + ":" + quoted(string(s.raw)) }

// quoted shows s as quoted lines, indented, clipped in the middle if long.
func quoted(s string) string {
	const keep = 1 << 10
	if len(s) > 3*keep {
		s = fmt.Sprintf("%s[… %d bytes …]%s", s[:2*keep], len(s)-3*keep, s[len(s)-keep:])
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			fmt.Fprintf(&b, "\n    %q", line)
		}
	}
	return b.String()
}

// head joins lines into a request head: CRLF after each, then the empty
// line.
func head(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// get is a plain GET of target.
func get(target string) string { return head("GET "+target+" HTTP/1.1", host) }

// withHeaders is a GET of / with more header lines.
func withHeaders(lines ...string) string {
	return head(append([]string{"GET / HTTP/1.1", host}, lines...)...)
}

// post is a POST of / with more header lines, and body.
func post(body string, lines ...string) string {
	return head(append([]string{"POST / HTTP/1.1", host}, lines...)...) + body
}

func connectionCases() []strictCase {
	return []strictCase{
		{name: "get", request: get("/")},
		{name: "get with a query", request: get("/search?q=a%20b&x=1&x=2")},
		{name: "head", request: head("HEAD / HTTP/1.1", host), method: http.MethodHead},
		{name: "three pipelined gets", request: get("/1") + get("/2") + get("/3")},
		{name: "pipelined, a body in the middle", request: get("/1") + post("hello", "Content-Length: 5") + get("/3")},
		{name: "pipelined, a bad target in the middle", request: get("/1") + get("/%zz") + get("/3")},
		{name: "pipelined, an empty line between", request: get("/1") + "\r\n" + get("/2")},
		{name: "connection close", request: withHeaders("Connection: close")},
		{name: "connection close, then a request", request: head("GET /1 HTTP/1.1", host, "Connection: close") + get("/2")},
		{name: "connection close in capitals", request: withHeaders("Connection: CLOSE")},
		{name: "connection keep-alive, close", request: withHeaders("Connection: keep-alive, close")},
		{name: "connection keep-alive and connection close", request: withHeaders("Connection: keep-alive", "Connection: close")},
		{name: "http/1.0", request: head("GET / HTTP/1.0", host)},
		{name: "http/1.0 keep-alive", request: head("GET / HTTP/1.0", host, "Connection: keep-alive")},
		{name: "http/1.0 keep-alive, pipelined", request: head("GET /1 HTTP/1.0", host, "Connection: keep-alive") + head("GET /2 HTTP/1.0", host)},
		{name: "http/1.0 without host", request: head("GET / HTTP/1.0")},
		{name: "idle connection times out", request: get("/"), wait: timeoutWait},
		{name: "nothing sent", wait: timeoutWait},
		{name: "head cut short", request: "GET / HTTP/1.1\r\n" + host + "\r\nAccept: te", wait: timeoutWait},
		{name: "request line cut short", request: "GET /ind", wait: timeoutWait},
		{name: "second head cut short", request: get("/1") + "GET /2 HTTP/1.1\r\nHo", wait: timeoutWait},
		{name: "empty lines before the request", request: "\r\n\r\n" + get("/")},
		{name: "one empty line before the request", request: "\r\n" + get("/")},
		{name: "upgrade to websocket", request: withHeaders("Connection: Upgrade", "Upgrade: websocket",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")},
		{name: "upgrade to h2c", request: withHeaders("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
			"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA")},
		{name: "http/2 preface", request: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{name: "connect", request: head("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443")},
		{name: "options *", request: head("OPTIONS * HTTP/1.1", host)},
		{name: "get *", request: head("GET * HTTP/1.1", host)},
		{name: "options /", request: head("OPTIONS / HTTP/1.1", host)},
	}
}

func bodyCases() []strictCase {
	const te = "Transfer-Encoding: chunked"
	return []strictCase{
		{name: "post, content-length 0", request: post("", "Content-Length: 0")},
		{name: "post, 10 byte body", request: post("0123456789", "Content-Length: 10")},
		{name: "post without a length", request: head("POST / HTTP/1.1", host)},
		{name: "get, content-length 0", request: withHeaders("Content-Length: 0")},
		{name: "get with a body", request: withHeaders("Content-Length: 5") + "hello"},
		{name: "body shorter than content-length", request: post("hello", "Content-Length: 10")},
		{name: "body longer than content-length", request: post("helloworld", "Content-Length: 5")},
		{name: "chunked body", request: post("5\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body with trailers", request: post("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n", te, "Trailer: X-Checksum")},
		{name: "chunked body with an extension", request: post("5;name=value\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, bad chunk size", request: post("zz\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, chunk size in 0x", request: post("0x5\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, chunk longer than its size", request: post("3\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, bare LF", request: post("5\nhello\n0\n\n", te)},
		{name: "chunked body cut short", request: post("5\r\nhel", te)},
		{name: "expect 100-continue, body sent at once", request: post("hello", "Content-Length: 5", "Expect: 100-continue")},
		{name: "expect 100-continue, body after the 100", request: post("", "Content-Length: 5", "Expect: 100-continue"), after: "hello"},
		{name: "expect 100-continue, chunked body after the 100", request: post("", te, "Expect: 100-continue"), after: "5\r\nhello\r\n0\r\n\r\n"},
		{name: "expect 100-continue without a body", request: withHeaders("Expect: 100-continue")},
		{name: "expect 100-continue on http/1.0", request: head("POST / HTTP/1.0", host, "Content-Length: 5", "Expect: 100-continue") + "hello"},
		{name: "unknown expectation", request: withHeaders("Expect: 200-ok")},
	}
}

func smugglingCases() []strictCase {
	const body = "5\r\nhello\r\n0\r\n\r\n"
	return []strictCase{
		{name: "content-length and chunked", request: post("0\r\n\r\nGET /smuggled HTTP/1.1\r\n"+host+"\r\n\r\n", "Content-Length: 5", "Transfer-Encoding: chunked")},
		{name: "chunked and content-length", request: post("0\r\n\r\n", "Transfer-Encoding: chunked", "Content-Length: 5")},
		{name: "two different content-lengths", request: post("hello!", "Content-Length: 5", "Content-Length: 6")},
		{name: "two equal content-lengths", request: post("hello", "Content-Length: 5", "Content-Length: 5")},
		{name: "content-length list 5, 6", request: post("hello!", "Content-Length: 5, 6")},
		{name: "content-length list 5, 5", request: post("hello", "Content-Length: 5, 5")},
		{name: "content-length with a plus sign", request: post("hello", "Content-Length: +5")},
		{name: "content-length with leading spaces", request: post("hello", "Content-Length:     5")},
		{name: "content-length with trailing spaces", request: post("hello", "Content-Length: 5   ")},
		{name: "content-length after a tab", request: post("hello", "Content-Length:\t5")},
		{name: "negative content-length", request: post("hello", "Content-Length: -1")},
		{name: "content-length in hex", request: post("hello", "Content-Length: 0x5")},
		{name: "content-length with leading zeros", request: post("hello", "Content-Length: 005")},
		{name: "huge content-length", request: post("hello", "Content-Length: 99999999999999999999")},
		{name: "empty content-length", request: post("hello", "Content-Length: ")},
		{name: "transfer-encoding gzip, chunked", request: post(body, "Transfer-Encoding: gzip, chunked")},
		{name: "transfer-encoding chunked, gzip", request: post(body, "Transfer-Encoding: chunked, gzip")},
		{name: "transfer-encoding xchunked", request: post(body, "Transfer-Encoding: xchunked")},
		{name: "transfer-encoding chunked twice", request: post(body, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")},
		{name: "transfer-encoding Chunked", request: post(body, "Transfer-Encoding: Chunked")},
		{name: "transfer-encoding identity", request: post(body, "Transfer-Encoding: identity")},
		{name: "transfer-encoding after a tab", request: post(body, "Transfer-Encoding:\tchunked")},
		{name: "space before the colon of transfer-encoding", request: post(body, "Transfer-Encoding : chunked")},
		{name: "space around transfer-encoding", request: post(body, " Transfer-Encoding : chunked")},
		{name: "space before the colon of content-length", request: post("hello", "Content-Length : 5")},
		{name: "transfer-encoding on http/1.0", request: head("POST / HTTP/1.0", host, "Transfer-Encoding: chunked") + body},
		{name: "transfer-encoding on a get", request: withHeaders("Transfer-Encoding: chunked") + "0\r\n\r\n"},
	}
}

func headerCases() []strictCase {
	return []strictCase{
		{name: "NUL in a header value", request: withHeaders("X-A: a\x00b")},
		{name: "bare CR in a header value", request: withHeaders("X-A: a\rb")},
		{name: "DEL in a header value", request: withHeaders("X-A: a\x7fb")},
		{name: "byte 0x80 in a header value", request: withHeaders("X-A: a\x80b")},
		{name: "UTF-8 in a header value", request: withHeaders("X-A: café")},
		{name: "tab in a header value", request: withHeaders("X-A: a\tb")},
		{name: "non-token byte in a header name", request: withHeaders("X(A): b")},
		{name: "space in a header name", request: withHeaders("X A: b")},
		{name: "empty header name", request: withHeaders(": b")},
		{name: "NUL in a header name", request: withHeaders("X\x00A: b")},
		{name: "byte 0x80 in a header name", request: withHeaders("X\x80A: b")},
		{name: "underscore in a header name", request: withHeaders("X_A: b")},
		{name: "header line without a colon", request: withHeaders("XA b")},
		{name: "obs-fold with a space", request: withHeaders("X-A: a", " b")},
		{name: "obs-fold with a tab", request: withHeaders("X-A: a", "\tb")},
		{name: "folded first header line", request: head("GET / HTTP/1.1", " X-A: b", host)},
		{name: "space before a colon", request: withHeaders("X-A : b")},
		{name: "repeated header", request: withHeaders("X-A: 1", "X-A: 2")},
		{name: "lowercase header name", request: withHeaders("x-custom-header: v")},
		{name: "empty header value", request: withHeaders("X-A:")},
		{name: "header value with spaces around", request: withHeaders("X-A:   b  ")},
		{name: "many headers", request: withHeaders(slices.Repeat([]string{"X-Many: v"}, 200)...)},
		{name: "bare LF line endings", request: "GET / HTTP/1.1\n" + host + "\nX-A: b\n\n"},
		{name: "bare LF in one line", request: "GET / HTTP/1.1\r\n" + host + "\nX-A: b\r\n\r\n"},
		{name: "bare LF after the request line", request: "GET / HTTP/1.1\n" + host + "\r\n\r\n"},
		{name: "bare LF ending the head", request: "GET / HTTP/1.1\r\n" + host + "\r\n\n"},
		{name: "bare CR line endings", request: "GET / HTTP/1.1\r" + host + "\r\r"},
		{name: "2 MiB head", request: withHeaders("X-Big: " + strings.Repeat("a", 2<<20))},
		{name: "10 KiB head", request: withHeaders("X-Big: " + strings.Repeat("a", 10<<10))},
		{name: "9 KiB request line", request: get("/" + strings.Repeat("a", 9<<10))},
		// Server reads a head into a buffer of 8 KiB (headBufSize).
		{name: "head of 8191 bytes", request: headOfSize(8<<10 - 1)},
		{name: "head of 8192 bytes", request: headOfSize(8 << 10)},
		{name: "head of 8193 bytes", request: headOfSize(8<<10 + 1)},
		{name: "head of 8194 bytes", request: headOfSize(8<<10 + 2)},
		{name: "pipelined heads of 5000 bytes", request: headOfSize(5000) + headOfSize(5000) + get("/3")},
		{name: "pipelined heads of 8192 bytes", request: headOfSize(8<<10) + headOfSize(8<<10)},
		{name: "300 pipelined gets", request: strings.Repeat(get("/"), 300)},
		{name: "get written byte by byte", request: get("/"), byteByByte: true},
		{name: "pipelined gets written byte by byte", request: get("/1") + get("/2"), byteByByte: true},
		{name: "post written byte by byte", request: post("hello", "Content-Length: 5"), byteByByte: true},
		{name: "bare LF head, then a CRLF head", request: "GET /1 HTTP/1.1\n" + host + "\n\n" + get("/2")},
	}
}

// headOfSize is a GET whose head is n bytes long, padded with a header.
func headOfSize(n int) string {
	short := withHeaders("X-Pad: ")
	return withHeaders("X-Pad: " + strings.Repeat("a", n-len(short)))
}

func hostCases() []strictCase {
	return []strictCase{
		{name: "missing host", request: head("GET / HTTP/1.1")},
		{name: "two host headers", request: withHeaders("Host: other.example")},
		{name: "two equal host headers", request: withHeaders(host)},
		{name: "empty host", request: head("GET / HTTP/1.1", "Host:")},
		{name: "host with a space", request: head("GET / HTTP/1.1", "Host: a b")},
		{name: "host with an at sign", request: head("GET / HTTP/1.1", "Host: x@y")},
		{name: "host with a port", request: head("GET / HTTP/1.1", "Host: example.com:8080")},
		{name: "ipv6 host", request: head("GET / HTTP/1.1", "Host: [::1]:8080")},
		{name: "host in capitals", request: head("GET / HTTP/1.1", "Host: EXAMPLE.com")},
		{name: "host with a slash", request: head("GET / HTTP/1.1", "Host: a/b")},
		{name: "host with a comma", request: head("GET / HTTP/1.1", "Host: a,b")},
		{name: "host with a percent", request: head("GET / HTTP/1.1", "Host: a%20b")},
		{name: "host with NUL", request: head("GET / HTTP/1.1", "Host: a\x00b")},
		{name: "host in UTF-8", request: head("GET / HTTP/1.1", "Host: bücher.example")},
		{name: "host with spaces around", request: head("GET / HTTP/1.1", "Host:   example.com  ")},
		{name: "host header name in lowercase", request: head("GET / HTTP/1.1", "host: example.com")},
	}
}

func targetCases() []strictCase {
	return []strictCase{
		{name: "absolute-form target", request: get("http://example.com/p")},
		{name: "absolute-form target, another host", request: get("http://other.example/p?q=1")},
		{name: "absolute-form https target", request: get("https://example.com/p")},
		{name: "authority-form target on a get", request: get("example.com:80")},
		{name: "target without a slash", request: get("p")},
		{name: "empty target", request: head("GET  HTTP/1.1", host)},
		{name: "invalid method", request: head("G(ET / HTTP/1.1", host)},
		{name: "lowercase method", request: head("get / HTTP/1.1", host)},
		{name: "custom method", request: head("PURGE / HTTP/1.1", host)},
		{name: "delete", request: head("DELETE /x HTTP/1.1", host)},
		{name: "missing method", request: head(" / HTTP/1.1", host)},
		{name: "tab in the target", request: get("/a\tb")},
		{name: "space in the target", request: get("/a b")},
		{name: "two spaces after the method", request: head("GET  / HTTP/1.1", host)},
		{name: "space after the version", request: head("GET / HTTP/1.1 ", host)},
		{name: "fragment in the target", request: get("/a#b")},
		{name: "UTF-8 in the target", request: get("/café")},
		{name: "byte 0xff in the target", request: get("/\xff")},
		{name: "NUL in the target", request: get("/a\x00b")},
		{name: "bad percent-encoding", request: get("/%zz")},
		{name: "cut percent-encoding", request: get("/a%2")},
		{name: "encoded dot segments", request: get("/%2e%2e/admin")},
		{name: "dot segments", request: get("/../admin")},
		{name: "encoded slash", request: get("/a%2Fb")},
		{name: "double slash", request: get("//a")},
		{name: "bare percent in the query", request: get("/?q=%")},
		{name: "64 KiB URL", request: get("/" + strings.Repeat("a", 64<<10))},
		{name: "http/1.2", request: head("GET / HTTP/1.2", host)},
		{name: "http/2.0", request: head("GET / HTTP/2.0", host)},
		{name: "http/0.9", request: head("GET / HTTP/0.9", host)},
		{name: "http/1.10", request: head("GET / HTTP/1.10", host)},
		{name: "version in lowercase", request: head("GET / http/1.1", host)},
		{name: "missing version", request: head("GET /", host)},
	}
}
