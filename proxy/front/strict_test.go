package front

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	hostLine = "Host: example.com"
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
	// halfClosedOnly skips the run where the client keeps its side open,
	// which would cost quietWait: for the sweeps of many small cases.
	halfClosedOnly bool
}

// strictRun is one case in one mode, and what both servers answered.
type strictRun struct {
	c strictCase
	// closeWrite says the client half-closes once it wrote everything.
	closeWrite         bool
	plain, front       transcript
	plainErr, frontErr error
}

func TestStrictMatchesNetHTTP(t *testing.T) {
	t.Run("accepted by the listener", func(t *testing.T) { testStrictMatchesNetHTTP(t, false) })
	t.Run("accepted bare", func(t *testing.T) { testStrictMatchesNetHTTP(t, true) })
}

// testStrictMatchesNetHTTP runs every case on net/http and on a Server
// that accepts its connections as fastConns (bare) or from the listener.
func testStrictMatchesNetHTTP(t *testing.T, bare bool) {
	h := http.HandlerFunc(describeRequest)
	plain := servePlain(t, h)
	_, front := serveFront(t, h, bare)
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
			r.runExchange(plain, front)
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
	for _, c := range allCases() {
		if seen[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		seen[c.name] = true
		if !c.halfClosedOnly {
			runs = append(runs, strictRun{c: c})
		}
		runs = append(runs, strictRun{c: c, closeWrite: true})
	}
	return runs
}

// runExchange runs r on both servers at once.
func (r *strictRun) runExchange(plain, front string) {
	var wg sync.WaitGroup
	wg.Go(func() { r.plain, r.plainErr = runExchange(plain, r.c, r.closeWrite) })
	wg.Go(func() { r.front, r.frontErr = runExchange(front, r.c, r.closeWrite) })
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
			r.name(), len(r.c.request+r.c.after), quotedLines(r.c.request+r.c.after),
			strings.Join(d, "\n  "), r.plain.full(), r.front.full())
	}
}

// TestStrictServesSimpleRequestsItself checks that Server takes the
// requests it is meant for and hands over the others: the differential
// test would also pass with a Server that hands over everything.
func TestStrictServesSimpleRequestsItself(t *testing.T) {
	srv, addr := serveFront(t, http.HandlerFunc(describeRequest), false)
	steps := []struct {
		c                  strictCase
		served, handedOver uint64 // how much Served and HandedOver grow
	}{
		{strictCase{name: "get", request: getRequest("/")}, 1, 0},
		{strictCase{name: "three pipelined gets", request: getRequest("/1") + getRequest("/2") + getRequest("/3")}, 3, 0},
		{strictCase{name: "head", request: requestHead("HEAD / HTTP/1.1", hostLine), method: "HEAD"}, 1, 0},
		{strictCase{name: "post with a body", request: postRequest("hello", "Content-Length: 5")}, 0, 1},
	}
	for _, st := range steps {
		served, handedOver := srv.Served(), srv.HandedOver()
		// The client half-closes and reads until the server closes: by
		// then the server is done with the connection and its counters.
		s, err := runExchange(addr, st.c, true)
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

// describeRequest answers with everything of the request a handler can
// see, in a canonical order: two servers given the same bytes answer the
// same body. Its query parameter "respond" picks how (see respondAs).
func describeRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "method %q\nrequest-uri %q\nurl %q\n", r.Method, r.RequestURI, r.URL.String())
	fmt.Fprintf(&b, "path %q raw-path %q raw-query %q\n", r.URL.Path, r.URL.RawPath, r.URL.RawQuery)
	fmt.Fprintf(&b, "host %q\nproto %q %d.%d\nclose %t\n", r.Host, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Close)
	fmt.Fprintf(&b, "content-length %d\ntransfer-encoding %#v\n", r.ContentLength, r.TransferEncoding)
	writeSortedHeader(&b, "header", r.Header)
	fmt.Fprintf(&b, "body %q error %v\n", body, err)
	writeSortedHeader(&b, "trailer", r.Trailer)
	fmt.Fprintf(&b, "nil header %t, nil trailer %t, body is NoBody %t\n", r.Header == nil, r.Trailer == nil, r.Body == http.NoBody)
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	fmt.Fprintf(&b, "remote host %q error %v\n", remote, err)
	// Not ctx.Err(): net/http cancels the context when it reads the
	// client's half-close, whenever that comes.
	_, server := r.Context().Value(http.ServerContextKey).(*http.Server)
	_, local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	fmt.Fprintf(&b, "context has the server %t, the local address %t\n", server, local)
	respondAs(w, r, b.String())
}

// respondAs writes desc as the request's "respond" parameter asks: the
// ResponseWriter of Server must behave as net/http's too. This part is
// about framing; respondWithFeature about the rest.
func respondAs(w http.ResponseWriter, r *http.Request, desc string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	switch how := r.URL.Query().Get("respond"); how {
	case "sniff": // net/http sniffs a Content-Type
		h.Del("Content-Type")
		io.WriteString(w, "<html>"+desc)
	case "empty":
	case "204", "304", "204-length", "304-length":
		status, length := strings.CutSuffix(how, "-length")
		if length {
			h.Set("Content-Length", strconv.Itoa(len(desc)))
		}
		code, _ := strconv.Atoi(status)
		w.WriteHeader(code)
		io.WriteString(w, desc) // not allowed: dropped
	case "length":
		h.Set("Content-Length", strconv.Itoa(len(desc)))
		io.WriteString(w, desc)
	case "short-length": // the handler writes more than it said
		h.Set("Content-Length", strconv.Itoa(len(desc)/2))
		io.WriteString(w, desc)
	case "long-length": // the handler writes less than it said
		h.Set("Content-Length", strconv.Itoa(len(desc)+10))
		io.WriteString(w, desc)
	case "close":
		h.Set("Connection", "close")
		io.WriteString(w, desc)
	case "flush":
		io.WriteString(w, desc[:len(desc)/2])
		http.NewResponseController(w).Flush()
		io.WriteString(w, desc[len(desc)/2:])
	case "big":
		io.WriteString(w, desc+strings.Repeat("x", 256<<10))
	case "trailer":
		h.Set("Trailer", "X-Checksum")
		io.WriteString(w, desc)
		h.Set("X-Checksum", "abc")
	default:
		respondWithFeature(w, how, desc)
	}
}

// respondWithFeature writes desc using the feature how names.
func respondWithFeature(w http.ResponseWriter, how, desc string) {
	switch how {
	case "early-hints":
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, desc)
	case "twice":
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, desc)
	case "abort":
		panic(http.ErrAbortHandler)
	case "abort-after-flush":
		io.WriteString(w, desc)
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	case "hijack":
		hijackAndAnswer(w, desc)
	case "slow": // long enough for Server to watch the client
		time.Sleep(5 * watchTick)
		io.WriteString(w, desc)
	case "controller":
		rc := http.NewResponseController(w)
		fmt.Fprintf(w, "%sread deadline %v\nwrite deadline %v\nfull duplex %v\n", desc,
			rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{}), rc.EnableFullDuplex())
	default:
		io.WriteString(w, desc)
	}
}

// hijackAndAnswer takes the connection over, answers on it and closes it.
func hijackAndAnswer(w http.ResponseWriter, desc string) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer c.Close()
	fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(desc), desc)
	brw.Flush()
}

func writeSortedHeader(b *strings.Builder, what string, h http.Header) {
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
func servePlain(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := netHTTPServer(h)
	return serveOn(t, "net/http", srv.Serve, srv.Close)
}

// serveFront serves h with a Server in front of net/http until the test
// ends.
func serveFront(t testing.TB, h http.Handler, bare bool) (*Server, string) {
	t.Helper()
	srv := &Server{Handler: h, Fallback: netHTTPServer(h), netAccept: !bare}
	return srv, serveOn(t, "front", srv.Serve, srv.Close)
}

// serveOn runs serve on a fresh loopback listener, stops it with stop when
// the test ends, and checks that serve then returned http.ErrServerClosed.
func serveOn(t testing.TB, name string, serve func(net.Listener) error, stop func() error) string {
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
