package sendtimeout

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

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

// writeResult is how a handler's writes ended: the first error, when the
// failing write began, and the bytes written.
type writeResult struct {
	err     error
	began   time.Time
	written int
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
			n, err := w.Write(buf)
			res.written += n
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
	if waited := time.Since(res.began); waited < streamTimeout {
		t.Fatalf("the write failed %v after it began, before the timeout %v", waited, streamTimeout)
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
	const chunk, count = 8 << 10, 8
	results := make(chan writeResult, 1)
	addr := serveStreams(t, writer(chunk, count, results), streamTimeout)
	hc := dialH2(t, addr, 0)
	hc.Get(1, "app.test", "/big")
	start := time.Now()
	for range count {
		time.Sleep(streamTimeout / 2)
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
	if after := ev.At.Sub(<-returned); after < streamTimeout {
		t.Fatalf("reset %v after the handler returned, before the timeout %v", after, streamTimeout)
	}
}

// HTTP/1.1 requests get the server's own writer (their connection has its
// send timeout, Conn), and so does every request when the timeout is 0.
func TestStreamsLeavesHTTP1Alone(t *testing.T) {
	var wrapped bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, wrapped = w.(*streamWriter)
		io.WriteString(w, "ok")
	})
	res, err := http.Get("http://" + serveStreams(t, h, streamTimeout) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "ok" || wrapped {
		t.Fatalf("HTTP/1.1: body %q, writer wrapped %v; want ok, not wrapped", body, wrapped)
	}
	// A timeout of 0 is off for HTTP/2 as well.
	hc := dialH2(t, serveStreams(t, h, 0), 1<<20)
	hc.Get(1, "app.test", "/")
	if ev, data := hc.Until(1, 10*time.Second); !ev.End || data != "ok" || wrapped {
		t.Fatalf("HTTP/2 with 0: body %q, ended %v, writer wrapped %v; want ok, not wrapped", data, ev.End, wrapped)
	}
}

// fakeStream is a server's HTTP/2 writer whose writes take delay, and
// which counts the resets asked of it and the calls that came after its
// handler returned, when the real server has recycled its writer.
type fakeStream struct {
	delay    time.Duration
	recycled atomic.Bool
	resets   atomic.Int32
	late     atomic.Int32
}

func (f *fakeStream) Header() http.Header { return http.Header{} }
func (f *fakeStream) WriteHeader(int)     {}

func (f *fakeStream) Write(p []byte) (int, error) {
	time.Sleep(f.delay)
	return len(p), nil
}

func (f *fakeStream) SetWriteDeadline(t time.Time) error {
	if f.recycled.Load() {
		f.late.Add(1)
	}
	if t.Before(time.Now()) {
		time.Sleep(100 * time.Microsecond) // queuing RST_STREAM takes a moment
		f.resets.Add(1)
		if f.recycled.Load() { // and uses the writer to the end
			f.late.Add(1)
		}
	}
	return nil
}

// A timer that fires as a write ends never reaches the server's writer
// after the handler returned: the server reuses it for another stream.
// Writes that take about the timeout make the two meet often.
func TestStreamResetNeverOutlivesTheHandler(t *testing.T) {
	const d = time.Millisecond
	h := Streams(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
	}), d)
	var resets, late int32
	for i := range 400 {
		f := &fakeStream{delay: d - 200*time.Microsecond + time.Duration(i%5)*100*time.Microsecond}
		r := httptest.NewRequest("GET", "/", nil)
		r.ProtoMajor = 2
		h.ServeHTTP(f, r)
		f.recycled.Store(true)
		time.Sleep(300 * time.Microsecond) // a late reset would come now
		resets += f.resets.Load()
		late += f.late.Load()
	}
	t.Logf("%d of 400 writes were reset", resets)
	if late > 0 {
		t.Fatalf("%d calls reached the writer after its handler returned", late)
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
