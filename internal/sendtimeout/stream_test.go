package sendtimeout

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/cutoverproxy/cutover/internal/h2test"
)

const streamTimeout = 300 * time.Millisecond

// serveStreams serves h behind Streams(h, d) over HTTP/1.1 and cleartext
// HTTP/2 (prior knowledge) on a loopback port and returns its address.
func serveStreams(t testing.TB, h http.Handler, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Streams(h, d), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// dialH2 connects to addr as an HTTP/2 client that grants each stream
// streamWindow bytes of window.
func dialH2(t *testing.T, addr string, streamWindow uint32) *h2test.Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return h2test.NewClient(t, c, "http", streamWindow)
}

// writeResult is how a handler's writes ended: the first error, and when
// the failing write began.
type writeResult struct {
	err   error
	began time.Time
}

// writer is a handler that writes chunk, flushed, count times, reports
// how that ended on results, and serves /small with a small body.
func writer(chunk, count int, results chan<- writeResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "small")
			return
		}
		buf := bytes.Repeat([]byte("x"), chunk)
		var res writeResult
		for range count {
			res.began = time.Now()
			_, err := w.Write(buf)
			if err == nil {
				err = http.NewResponseController(w).Flush()
			}
			if err != nil {
				res.err = err
				break
			}
		}
		results <- res
	})
}

// A stream whose client grants it no window is reset once a write waited
// d, no sooner; the connection and its other streams go on.
func TestStarvedStreamIsReset(t *testing.T) {
	results := make(chan writeResult, 1)
	addr := serveStreams(t, writer(64<<10, 1<<10, results), streamTimeout)
	hc := dialH2(t, addr, 0)
	hc.Get(1, "app.test", "/big")
	var res writeResult
	select {
	case res = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still writes to a stream without window after 10 s")
	}
	if res.err == nil {
		t.Fatal("64 MiB went out on a stream that was granted no window")
	}
	if waited := time.Since(res.began); waited < streamTimeout || waited > streamTimeout+2*time.Second {
		t.Fatalf("the write failed %v after it began; want the timeout %v, give or take 2 s", waited, streamTimeout)
	}
	ev, data := hc.Until(1, 10*time.Second)
	if ev.Type != http2.FrameRSTStream || ev.Code != http2.ErrCodeInternal {
		t.Fatalf("stream 1 ended with %v (code %v), want RST_STREAM INTERNAL_ERROR", ev.Type, ev.Code)
	}
	if data != "" {
		t.Fatalf("stream 1 carried %d bytes without window", len(data))
	}
	hc.Get(3, "app.test", "/small")
	hc.Grant(3, 1<<20)
	if ev, data := hc.Until(3, 10*time.Second); !ev.End || data != "small" {
		t.Fatalf("stream 3 after the reset: %q, ended %v; want small and its end", data, ev.End)
	}
}

// A client that grants each write's bytes in time is never cut off, however
// long the whole response takes.
func TestStreamGrantedInTimeIsNotReset(t *testing.T) {
	const chunk, count = 8 << 10, 12
	results := make(chan writeResult, 1)
	addr := serveStreams(t, writer(chunk, count, results), streamTimeout)
	hc := dialH2(t, addr, 0)
	hc.Get(1, "app.test", "/big")
	start := time.Now()
	for range count { // each write waits for its grant a quarter of the timeout
		time.Sleep(streamTimeout / 4)
		hc.Grant(1, chunk)
	}
	ev, data := hc.Until(1, 10*time.Second)
	if !ev.End || len(data) != chunk*count {
		t.Fatalf("got %d of %d bytes, ended by %v (code %v)", len(data), chunk*count, ev.Type, ev.Code)
	}
	if res := <-results; res.err != nil {
		t.Fatalf("a write failed: %v", res.err)
	}
	if took := time.Since(start); took < 2*streamTimeout {
		t.Fatalf("the response took %v: it did not outlast the timeout, so it tests nothing", took)
	}
}

// A stream that waits for its next bytes longer than d (an idle event
// stream) is not reset: only writes are timed.
func TestIdleStreamIsNotReset(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		time.Sleep(3 * streamTimeout) // after a write
		io.WriteString(w, "second")
		w.(http.Flusher).Flush()
		time.Sleep(3 * streamTimeout) // after a flush
		io.WriteString(w, "third")
	})
	hc := dialH2(t, serveStreams(t, h, streamTimeout), 1<<20)
	hc.Get(1, "app.test", "/events")
	if ev, data := hc.Until(1, 10*time.Second); !ev.End || data != "firstsecondthird" {
		t.Fatalf("got %q, ended by %v (code %v); want firstsecondthird and its end", data, ev.Type, ev.Code)
	}
}

// The bytes the server still holds when the handler returns are bounded
// too: the stream is reset d after the handler's end when the client
// grants them no window.
func TestStarvedTailIsReset(t *testing.T) {
	returned := make(chan time.Time, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a short body the server buffers")
		returned <- time.Now()
	})
	hc := dialH2(t, serveStreams(t, h, streamTimeout), 0)
	hc.Get(1, "app.test", "/short")
	ev, data := hc.Until(1, 10*time.Second)
	if ev.Type != http2.FrameRSTStream || data != "" {
		t.Fatalf("stream 1 ended with %v after %q, want RST_STREAM and no data", ev.Type, data)
	}
	if after := ev.At.Sub(<-returned); after < streamTimeout || after > streamTimeout+2*time.Second {
		t.Fatalf("reset %v after the handler returned; want the timeout %v, give or take 2 s", after, streamTimeout)
	}
}

// HTTP/2 requests get the bounded writer; HTTP/1.1 requests the server's
// own, since their connection has its send timeout (Conn).
func TestStreamsWrapsHTTP2Only(t *testing.T) {
	wrapped := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := w.(*streamWriter)
		wrapped <- ok
		io.WriteString(w, "ok")
	})
	addr := serveStreams(t, h, streamTimeout)
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "ok" || <-wrapped {
		t.Fatalf("HTTP/1.1: body %q, writer wrapped; want ok, not wrapped", body)
	}
	hc := dialH2(t, addr, 1<<20)
	hc.Get(1, "app.test", "/")
	if ev, data := hc.Until(1, 10*time.Second); !ev.End || data != "ok" || !<-wrapped {
		t.Fatalf("HTTP/2: body %q, ended %v; want ok, its end, and the writer wrapped", data, ev.End)
	}
}

// Streams that end are not reset afterwards: many small responses, each
// of whose bytes the server holds when the handler returns, ten at a time
// on one connection, and none gets a RST_STREAM once it ended, even after
// the timeout passed.
func TestEndedStreamsAreNotReset(t *testing.T) {
	const d, batches, batch = 300 * time.Millisecond, 1000, 10
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a short body the server buffers")
	})
	hc := dialH2(t, serveStreams(t, h, d), 1<<20)
	id := uint32(1)
	for range batches {
		for i := range uint32(batch) {
			hc.Get(id+2*i, "app.test", "/")
		}
		for range batch {
			if ev, _ := hc.Until(id, 10*time.Second); !ev.End {
				t.Fatalf("stream %d ended by %v (code %v), want its END_STREAM", id, ev.Type, ev.Code)
			}
			id += 2
		}
	}
	for _, ev := range hc.Rest(3 * d) {
		if ev.Type == http2.FrameRSTStream {
			t.Errorf("stream %d was reset (code %v) after it ended", ev.Stream, ev.Code)
		}
	}
}

// Trailers end a stream as its headers do, and a HEAD response has no
// body for flow control to hold: neither is reset when the client grants
// no window. A body before trailers is held, and its stream reset.
func TestTrailersAndHEAD(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		if r.URL.Path == "/body" {
			io.WriteString(w, "body")
		}
		w.Header().Set("X-Sum", "1")
	})
	addr := serveStreams(t, h, streamTimeout)
	hc := dialH2(t, addr, 0)
	hc.Get(1, "app.test", "/")
	if ev, _ := hc.Until(1, 10*time.Second); !ev.End || ev.Type != http2.FrameHeaders {
		t.Fatalf("trailers without a body: ended by %v (code %v), want the trailers' END_STREAM", ev.Type, ev.Code)
	}
	hc.Head(3, "app.test", "/body")
	ev, _ := hc.Until(3, 10*time.Second)
	if !ev.End {
		t.Fatalf("HEAD: ended by %v (code %v), want END_STREAM", ev.Type, ev.Code)
	}
	// As without the bound: the server, at the handler's end, gives the
	// length of the body a GET would get.
	if !slices.Contains(ev.Fields, hpack.HeaderField{Name: "content-length", Value: "4"}) {
		t.Errorf("HEAD: fields %v, want content-length 4", ev.Fields)
	}
	hc.Get(5, "app.test", "/body")
	if ev, _ := hc.Until(5, 10*time.Second); ev.Type != http2.FrameRSTStream {
		t.Fatalf("a body before trailers, granted no window: ended by %v, want RST_STREAM", ev.Type)
	}
}

// fakeStream is a server's HTTP/2 writer whose writes take the given
// delays in turn. It counts the resets asked of it, those that came at the
// very start of a write (within a sixteenth of the timeout d: a reset
// meant for the write before), and the calls that came after its handler
// returned, when the real server has recycled its writer.
type fakeStream struct {
	d        time.Duration
	delays   []time.Duration
	writes   int
	began    atomic.Int64 // when the write in progress began (UnixNano); 0 for none
	recycled atomic.Bool
	resets   atomic.Int32
	early    atomic.Int32
	late     atomic.Int32
}

func (f *fakeStream) Header() http.Header { return http.Header{} }
func (f *fakeStream) WriteHeader(int)     {}

func (f *fakeStream) Write(p []byte) (int, error) {
	f.began.Store(time.Now().UnixNano())
	defer f.began.Store(0)
	time.Sleep(f.delays[f.writes%len(f.delays)])
	f.writes++
	return len(p), nil
}

func (f *fakeStream) SetWriteDeadline(t time.Time) error {
	if f.recycled.Load() {
		f.late.Add(1)
	}
	if t.Before(time.Now()) {
		// (Between the fake's write and the wrapper's, a reset finds
		// none in progress here; it may be the last one's, in time.)
		// A write's own reset comes d after the wrapper armed it, which a
		// busy machine may leave some way before the fake's write began:
		// only a reset at the very start of a write counts.
		if began := f.began.Load(); began != 0 && time.Since(time.Unix(0, began)) < f.d/16 {
			f.early.Add(1)
		}
		// Queuing RST_STREAM takes a moment: here longer than the short
		// write after, so that a reset not waited for outlives the handler.
		time.Sleep(f.d / 2)
		f.resets.Add(1)
		if f.recycled.Load() { // and uses the writer to the end
			f.late.Add(1)
		}
	}
	return nil
}

// A timer that fires as a write ends resets neither the next write nor,
// once the handler returned, the server's writer, which the server reuses
// for another stream. Writes that take about the timeout, each followed
// by a short one, make the timer and the writes' ends meet often.
func TestStreamResetHitsOnlyItsWrite(t *testing.T) {
	const d = 5 * time.Millisecond
	h := Streams(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x")) // about d
		w.Write([]byte("y")) // d/4
	}), d)
	var resets, early, late int32
	for i := range 400 {
		long := d - d/5 + time.Duration(i%5)*d/10
		f := &fakeStream{d: d, delays: []time.Duration{long, d / 4}}
		r := httptest.NewRequest("GET", "/", nil)
		r.ProtoMajor = 2
		h.ServeHTTP(f, r)
		f.recycled.Store(true)
		time.Sleep(d / 3) // a late reset would come now
		resets += f.resets.Load()
		early += f.early.Load()
		late += f.late.Load()
	}
	t.Logf("%d resets in 400 responses", resets)
	if late > 0 {
		t.Errorf("%d calls reached the writer after its handler returned", late)
	}
	if early > 0 {
		t.Errorf("%d resets came early in a write: meant for the write before", early)
	}
	if resets == 0 {
		t.Fatal("no write met its timer: the test exercised nothing")
	}
}

// BenchmarkStreams measures what the bound adds to a small HTTP/2
// response (100 B, cleartext, one connection, requests in parallel): the
// difference between off and on, client and server in one process.
func BenchmarkStreams(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write(body)
	})
	for _, bb := range []struct {
		name string
		d    time.Duration
	}{{"off", 0}, {"on", time.Minute}} {
		b.Run(bb.name, func(b *testing.B) {
			addr := serveStreams(b, h, bb.d)
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := cl.Get("http://" + addr + "/")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			})
		})
	}
}

// Without Streams, the connection's own send timeout (Conn) still ends an
// HTTP/2 connection whose client stops reading it: the handler's write
// fails, no sooner than d, and the connection is closed.
func TestHTTP2ConnectionTimeoutWithoutStreams(t *testing.T) {
	const d = streamTimeout
	results := make(chan writeResult, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: writer(64<<10, 1<<14, results), Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(WrapListener(ln, d))
	t.Cleanup(func() { srv.Close() })
	dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		return errors.Join(err, serr)
	}}
	c, err := dialer.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// All the window there is, then read nothing: only the socket holds
	// the server back.
	start := time.Now()
	if err := errors.Join(h2test.Start(c, 1<<31-1), h2test.Get(http2.NewFramer(c, nil), 1, "http", "app.test", "/big")); err != nil {
		t.Fatal(err)
	}
	var res writeResult
	select {
	case res = <-results:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler still writes to a client that reads nothing after 20 s")
	}
	if res.err == nil {
		t.Fatal("1 GiB went out to a client that reads nothing")
	}
	if waited := time.Since(start); waited < d {
		t.Fatalf("the write failed %v after the request, before the timeout %v", waited, d)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection whose write timed out is still open")
	}
}
