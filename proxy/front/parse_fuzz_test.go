package front

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// FuzzParseReadsAsNetHTTP holds parse to net/http's reading of the same
// bytes: a head that parse takes must be one that net/http's server reads
// without error, ending where parse's ends (no body, nothing left over
// that net/http would read as part of it), with the same method, target,
// URL, Host, header fields and Connection: close. A head that parse
// refuses goes to net/http, so refusing is always safe; taking one that
// net/http reads otherwise is the kind of difference request smuggling
// lives on. The seeds are every case of TestStrictMatchesNetHTTP;
// `go test -fuzz FuzzParseReadsAsNetHTTP ./proxy/front/` searches on.
func FuzzParseReadsAsNetHTTP(f *testing.F) {
	for _, c := range allCases() {
		f.Add(c.request + c.after)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		end := strings.Index(stream, "\r\n\r\n")
		if end < 0 {
			return // no head: Server reads on, or hands the bytes over
		}
		head := stream[:end+4]
		got, ok := parse(head, new(url.URL), make([]string, 2)) // room for two values: both ways are fuzzed
		if !ok {
			return
		}
		want, err := readAsNetHTTP(stream, len(head))
		if err != nil {
			t.Fatalf("parse took a head that net/http does not read the same way: %v\nhead: %q", err, head)
		}
		if d := requestDiff(got, want); d != "" {
			t.Fatalf("parse read a head differently from net/http: %s\nhead: %q", d, head)
		}
	})
}

// readAsNetHTTP reads the first request of stream as net/http's server
// does (http.ReadRequest, then the checks the server adds: a Host field,
// a valid one if it is alone, header names and values valid, an Expect
// field answered), and checks that it has no body and that its head is
// the first n bytes.
func readAsNetHTTP(stream string, n int) (*http.Request, error) {
	src := strings.NewReader(stream)
	br := bufio.NewReaderSize(src, len(stream)+16)
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	if read := len(stream) - br.Buffered() - src.Len(); read != n {
		return nil, fmt.Errorf("net/http's head is %d bytes, parse's %d", read, n)
	}
	if r.ContentLength != 0 || r.Body != http.NoBody || len(r.TransferEncoding) > 0 {
		return nil, fmt.Errorf("net/http reads a body (length %d, transfer encoding %q)", r.ContentLength, r.TransferEncoding)
	}
	if e, ok := r.Header["Expect"]; ok {
		return nil, fmt.Errorf("net/http's server answers Expect %q itself (100 Continue or 417)", e)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		return nil, fmt.Errorf("net/http reads protocol %s", r.Proto)
	}
	// ReadRequest drops the Host fields the server checks: they are read
	// again, as readRequest reads the header.
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(stream[:n])))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	fields, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	if hosts := fields["Host"]; len(hosts) == 0 || len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return nil, fmt.Errorf("net/http's server answers 400 to Host fields %q", hosts)
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("net/http's server answers 400 to field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("net/http's server answers 400 to the value %q of %s", v, k)
			}
		}
	}
	return r, nil
}

// requestDiff says how what parse read differs from net/http's request,
// or "" when it does not.
func requestDiff(got request, want *http.Request) string {
	var d []string
	diff := func(what string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s: parse %#v, net/http %#v", what, g, w))
		}
	}
	diff("method", got.method, want.Method)
	diff("target", got.target, want.RequestURI)
	diff("URL", got.url, want.URL)
	diff("host", got.host, want.Host)
	diff("header", got.header, want.Header)
	diff("close", got.close, want.Close)
	return strings.Join(d, "; ")
}

// FuzzServerMatchesNetHTTP is TestStrictMatchesNetHTTP with byte streams
// the fuzzer makes: each is written to a net/http server and to a Server
// in front of one, the client half-closes, and the two transcripts must
// match. It covers what FuzzParseReadsAsNetHTTP does not: where a head
// ends in the buffer, pipelining, bodies and the handing over of a
// connection with the bytes already read. The seeds are the cases of
// TestStrictMatchesNetHTTP.
//
// A reset loses what had not reached the client, so transcripts that
// resets cut are compared only as far as both got (sameBeforeResets).
// What each server wrote to the connection is recorded on its side too
// (recordingListener), and must read as the same responses, reset or not.
func FuzzServerMatchesNetHTTP(f *testing.F) {
	addStrictSeeds(f)
	h := http.HandlerFunc(describeRequest)
	plainLn, frontLn := &recordingListener{}, &recordingListener{}
	std := netHTTPServer(h)
	plain := serveOn(f, "net/http", plainLn.serving(std.Serve), std.Close)
	srv := &Server{Handler: h, Fallback: netHTTPServer(h)}
	front := serveOn(f, "front", frontLn.serving(srv.Serve), srv.Close)
	f.Fuzz(func(t *testing.T, stream string) {
		r := strictRun{c: strictCase{name: "fuzz", request: stream}, closeWrite: true}
		r.runExchange(plain, front)
		plainWrote, frontWrote := plainLn.written(t), frontLn.written(t)
		if d := responsesIn(plainWrote).diff(responsesIn(frontWrote)); len(d) > 0 {
			t.Errorf("request (%d bytes):%s\nwhat the servers wrote differs:\n  %s\nnet/http wrote %q\nfront wrote %q",
				len(stream), quotedLines(stream), strings.Join(d, "\n  "), plainWrote, frontWrote)
		}
		if len(r.plain.diff(r.front)) > 0 && sameBeforeResets(r.plain, r.front) {
			return
		}
		r.check(t)
	})
}

// FuzzBareServerMatchesNetHTTP is FuzzServerMatchesNetHTTP on connections
// that Server accepts bare (fastConn), compared as the clients see them:
// recording what the server writes needs a listener of its own, which
// Server does not accept bare from.
func FuzzBareServerMatchesNetHTTP(f *testing.F) {
	addStrictSeeds(f)
	h := http.HandlerFunc(describeRequest)
	plain := servePlain(f, h)
	_, front := serveFront(f, h, true)
	f.Fuzz(func(t *testing.T, stream string) {
		r := strictRun{c: strictCase{name: "fuzz", request: stream}, closeWrite: true}
		r.runExchange(plain, front)
		if len(r.plain.diff(r.front)) > 0 && sameBeforeResets(r.plain, r.front) {
			return
		}
		r.check(t)
	})
}

// addStrictSeeds seeds f with the cases of TestStrictMatchesNetHTTP that
// are one stream sent at once.
func addStrictSeeds(f *testing.F) {
	for _, c := range allCases() {
		if c.after == "" && c.wait == 0 && !c.byteByByte {
			f.Add(c.request)
		}
	}
}

// responsesIn reads what a server wrote as a client would.
func responsesIn(written string) transcript {
	return readResponses(&byteRecorder{r: strings.NewReader(written)}, http.MethodGet, func() {})
}

// recordingListener gives its server connections that record what the
// server writes, for one connection at a time.
type recordingListener struct {
	net.Listener
	mu   sync.Mutex
	last *recordingConn // the latest accepted
}

// serving returns serve with l wrapped around the listener it gets.
func (l *recordingListener) serving(serve func(net.Listener) error) func(net.Listener) error {
	return func(ln net.Listener) error {
		l.Listener = ln
		return serve(l)
	}
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{c: c.(*net.TCPConn), done: make(chan struct{})}
	l.mu.Lock()
	l.last = rc
	l.mu.Unlock()
	return rc, nil
}

// written returns what the server wrote to the latest connection, once it
// can write no more (it closed the connection or its sending half).
func (l *recordingListener) written(t *testing.T) string {
	t.Helper()
	l.mu.Lock()
	rc := l.last
	l.last = nil
	l.mu.Unlock()
	if rc == nil {
		t.Fatal("the server accepted no connection")
	}
	select {
	case <-rc.done:
	case <-time.After(testTimeout):
		t.Fatal("the server kept the connection open")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.out.String()
}

// recordingConn is a server's side of a connection that records what the
// server writes. It wraps rather than embeds the *net.TCPConn: embedded,
// its ReadFrom and net.Buffers' writev would write past the record.
type recordingConn struct {
	c    *net.TCPConn
	mu   sync.Mutex
	out  strings.Builder
	once sync.Once
	done chan struct{} // closed at Close or CloseWrite
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.c.Write(p)
}

func (c *recordingConn) end() { c.once.Do(func() { close(c.done) }) }

func (c *recordingConn) Close() error {
	c.end()
	return c.c.Close()
}

// CloseWrite half-closes, as net/http does before it closes after an
// error (its lingering close).
func (c *recordingConn) CloseWrite() error {
	c.end()
	return c.c.CloseWrite()
}

func (c *recordingConn) Read(p []byte) (int, error)         { return c.c.Read(p) }
func (c *recordingConn) LocalAddr() net.Addr                { return c.c.LocalAddr() }
func (c *recordingConn) RemoteAddr() net.Addr               { return c.c.RemoteAddr() }
func (c *recordingConn) SetDeadline(t time.Time) error      { return c.c.SetDeadline(t) }
func (c *recordingConn) SetReadDeadline(t time.Time) error  { return c.c.SetReadDeadline(t) }
func (c *recordingConn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }

// sameBeforeResets reports whether two transcripts that differ are the
// same as far as resets let the client see. A server that closes with
// bytes it did not read (net/http does after a 400, with the rest of a
// pipeline unread) resets the connection, and what it sent that had not
// reached the client yet is lost: how much depends on timing. A reset
// only cuts the end off; it changes nothing before. So when both were
// reset, every response whose head both clients read must be the same,
// its body as far as both got; when one was, only the end of a final 400
// may differ (see resetAsClose). The cases of TestStrictMatchesNetHTTP
// are made so that neither happens.
func sameBeforeResets(plain, front transcript) bool {
	if !plain.reset || !front.reset {
		return len(resetAsClose(plain).diff(resetAsClose(front))) == 0
	}
	for i := range min(len(plain.responses), len(front.responses)) {
		a, b := plain.responses[i], front.responses[i]
		if a.err != "" || b.err != "" {
			// A body the reset cut short: the same as far as both got.
			n := min(len(a.body), len(b.body))
			if a.body[:n] != b.body[:n] {
				return false
			}
			a.body, b.body, a.err, b.err, a.trailer, b.trailer = "", "", "", "", nil, nil
		}
		if len(a.diff(b, i)) > 0 {
			return false
		}
	}
	return true
}

// resetAsClose is s with a reset that ended the body of a final 400 taken
// for the close that delimits it. Whether net/http left bytes unread when
// it answered 400 and closed depends on how its reads fell (net/http reads
// 4 KiB at a time, Server up to 8 KiB before it hands over, and the
// client's segments arrive as they do), not on what either server
// decided.
func resetAsClose(s transcript) transcript {
	const reset = "connection reset"
	n := len(s.responses)
	if n == 0 {
		return s
	}
	last := s.responses[n-1]
	if last.status == "400 Bad Request" && s.err == "a response cut short: "+reset && last.err == reset {
		s.responses = slices.Clone(s.responses)
		s.responses[n-1].err = ""
		s.err, s.closed = "", true
	}
	return s
}
