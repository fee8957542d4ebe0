package front

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A head with bare LFs that arrives, pipelined, during a slow request
// reaches net/http with a read deadline of its own, not one that expired
// meanwhile.
func TestHandoverAfterASlowRequestKeepsAFreshDeadline(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchTick)
		}
		echoPath(w, r)
	}), func(fb *http.Server) { fb.ReadHeaderTimeout = 300 * time.Millisecond })
	c, br := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\nHost: a\n")
	readResponse(t, br, "GET")
	io.WriteString(c, "\n")
	if res, body := readResponse(t, br, "GET"); body != "GET a /next?" {
		t.Errorf("the pipelined request: %s %q", res.Status, body)
	}
}

// flakyListener fails its first Accept with err.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
	err    error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// Running out of file descriptors, in the process or the system, is
// waited out, as net/http does.
func TestServeWaitsOutAcceptErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h := http.HandlerFunc(echoPath)
		s := &Server{Handler: h, Fallback: &http.Server{Handler: h}}
		done := make(chan error, 1)
		go func() { done <- s.Serve(&flakyListener{Listener: ln, err: &net.OpError{Op: "accept", Err: errno}}) }()
		c, br := dial(t, ln.Addr().String())
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if res, body := readResponse(t, br, "GET"); body != "GET a /?" {
			t.Errorf("after %v: %s %q", errno, res.Status, body)
		}
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("after %v: Serve returned %v", errno, err)
		}
	}
}

// During Shutdown, a request in progress still sees its client go away.
func TestShutdownStillWatchesClients(t *testing.T) {
	canceled := make(chan struct{})
	started := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(testTimeout):
		}
	}))
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	done := shutdownAsync(s)
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case <-canceled:
	case <-time.After(testTimeout / 2):
		t.Fatal("the request's context did not end when its client went away during Shutdown")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A connection a handler hijacked is the handler's: Shutdown neither
// interrupts nor waits for it, even while the handler runs.
func TestShutdownLeavesHijackedConnections(t *testing.T) {
	read := make(chan error, 1)
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			read <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(testTimeout))
		line, err := brw.ReadString('\n')
		if err == nil && line != "after shutdown\n" {
			err = errors.New("read " + line)
		}
		read <- err
	}))
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	io.WriteString(c, "after shutdown\n")
	if err := <-read; err != nil {
		t.Errorf("the hijacked connection after Shutdown: %v", err)
	}
}

// With h2c on, an HTTP/2 preface after requests on a connection is read
// as an HTTP/1 request, PRI *, after which the connection closes: net/http
// looks for the preface at a connection's start only.
func TestH2CPrefaceAfterRequestsIsAnHTTP1Request(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.RequestURI+" "+r.Proto)
	}), func(fb *http.Server) {
		fb.Protocols = new(http.Protocols)
		fb.Protocols.SetHTTP1(true)
		fb.Protocols.SetUnencryptedHTTP2(true)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	readResponse(t, br, "GET")
	if res, body := readResponse(t, br, "PRI"); body != "PRI * HTTP/2.0" || !res.Close {
		t.Errorf("the preface after a request: %s %q, Connection: close %v", res.Status, body, res.Close)
	}
	if b, err := io.ReadAll(br); len(b) != 0 || err != nil {
		t.Errorf("after the preface: %q, %v; want the connection closed", b, err)
	}
	if s.HandedOver() != 0 {
		t.Errorf("handed over %d connections, want 0", s.HandedOver())
	}
}

// Trailers that may not be trailers (RFC 9110 6.5.1) are left out, as
// net/http does.
func TestForbiddenTrailersLeftOut(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Content-Type, X-Sum")
		io.WriteString(w, strings.Repeat("x", 3000))
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Sum", "1")
		w.Header().Set(http.TrailerPrefix+"Content-Encoding", "gzip")
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, _ := readResponse(t, br, "GET")
	if res.Trailer.Get("X-Sum") != "1" || res.Trailer.Get("Content-Type") != "" || res.Trailer.Get("Content-Encoding") != "" {
		t.Errorf("trailers %v, want X-Sum only", res.Trailer)
	}
}

// A MaxHeaderBytes below Server's buffer bounds the heads Server takes:
// longer ones are net/http's to judge.
func TestSmallMaxHeaderBytesHandsOver(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(echoPath), func(fb *http.Server) { fb.MaxHeaderBytes = 1024 })
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("b", 2000)+"\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); body != "GET a /?" || s.HandedOver() != 1 {
		t.Errorf("a 2 KiB head with MaxHeaderBytes 1024: %s %q, handed over %d", res.Status, body, s.HandedOver())
	}
}

// TestIdleAndHeaderTimeoutsApplyAsNetHTTPs: with an idle timeout and a
// read header timeout far apart, each applies where net/http applies it:
// the read header timeout to the first request's head and to the rest of
// a later head once 4 bytes of it came, the idle timeout between requests
// and to those first bytes. Each case runs against cutover's server and
// net/http's alone: both must end the connection within the probe, or keep
// it past the short timeout, as the case says, and answer the same (a 400
// for a later head cut short by its timeout). (The strict test's servers
// use one value for both, which cannot tell them apart.)
func TestIdleAndHeaderTimeoutsApplyAsNetHTTPs(t *testing.T) {
	const short, long = 300 * time.Millisecond, 4 * time.Second
	// probe is how long a client waits: past short, well short of long.
	const probe = 1500 * time.Millisecond
	const request = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name         string
		idle, header time.Duration
		send         string // after the first request's response, if served is set
		served       bool
		ends         bool // the server ends the connection within probe
	}{
		{"idle after a request, short idle", short, long, "", true, true},
		{"idle after a request, short header", long, short, "", true, false},
		{"3 bytes of the next request, short idle", short, long, "GET", true, true},
		{"3 bytes of the next request, short header", long, short, "GET", true, false},
		{"5 bytes of the next request, short idle", short, long, "GET /", true, false},
		{"5 bytes of the next request, short header", long, short, "GET /", true, true},
		{"part of the first head, short idle", short, long, "GET / HTTP/1.1\r\n", false, false},
		{"part of the first head, short header", long, short, "GET / HTTP/1.1\r\n", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.HandlerFunc(echoPath)
			configure := func(fb *http.Server) { fb.IdleTimeout, fb.ReadHeaderTimeout = tc.idle, tc.header }
			_, frontAddr := start(t, h, configure)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			std := &http.Server{Handler: h}
			configure(std)
			go std.Serve(ln)
			t.Cleanup(func() { std.Close() })
			var answers [2]string
			for i, srv := range []struct{ name, addr string }{{"cutover", frontAddr}, {"net/http", ln.Addr().String()}} {
				c, br := dial(t, srv.addr)
				if tc.served {
					io.WriteString(c, request)
					readResponse(t, br, "GET")
				}
				io.WriteString(c, tc.send)
				c.SetReadDeadline(time.Now().Add(probe))
				rest, err := io.ReadAll(br)
				var ne net.Error
				timedOut := errors.As(err, &ne) && ne.Timeout()
				if ended := !timedOut; ended != tc.ends {
					t.Errorf("%s: the connection ended within %v: %v (read %q, %v); want %v", srv.name, probe, ended, rest, err, tc.ends)
				}
				answers[i] = string(rest)
			}
			if answers[0] != answers[1] {
				t.Errorf("cutover answered %q, net/http %q", answers[0], answers[1])
			}
		})
	}
}
