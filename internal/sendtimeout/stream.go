package sendtimeout

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Streams returns h with a send timeout of d on the response of every
// HTTP/2 request, or h itself when d is not positive.
//
// Why a second layer: an HTTP/2 client can keep its connection busy
// (reading other streams, answering pings) while it grants one stream no
// flow-control window. The connection's writes then never wait, so Conn
// never fires, but the stream's handler waits in Write for as long as the
// client likes, holding the backend's response with it. net/http's HTTP/2
// server has no bound for that wait but WriteTimeout, which bounds the
// whole response.
//
// The bound is per write, and counts a write's whole time, not the time
// without progress that Conn counts (a handler cannot see a write's
// progress): a Write or Flush of the response that has not returned after
// d resets the stream (RST_STREAM, INTERNAL_ERROR), and the write fails.
// A write carries what the handler gives it and what the server's 4 KiB
// buffer held, so at most 68 KiB from the proxy, whose buffer is 64 KiB;
// the streams of a connection share it round robin, so a connection
// carrying N slow downloads must carry N such writes per d. When the
// handler returns, what the server still holds is flushed under the same
// bound before the server ends the stream. A stream that waits for its
// backend between writes is not counted: an idle event stream is never
// cut off.
func Streams(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := w.(writeDeadliner)
		if r.ProtoMajor != 2 || !ok {
			h.ServeHTTP(w, r)
			return
		}
		sw := &streamWriter{ResponseWriter: w, dl: dl, d: d}
		h.ServeHTTP(sw, r)
		if sw.pending && r.Method != http.MethodHead {
			// The server would write these bytes after the handler
			// returned, out of the bound's reach.
			_ = sw.FlushError()
		}
	})
}

// writeDeadliner is the part of net/http's HTTP/2 response writer that
// resets its stream: at once for a time in the past.
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// streamWriter is an HTTP/2 response writer whose writes reset the
// stream when they take longer than d. Writes come from the handler's
// goroutine, one at a time; the timer's function runs on its own, and may
// touch the server's writer only during the write it was armed for: after
// the handler returned, the server recycles the writer for another
// stream.
//
// A timer belongs to one generation of writes: as long as each write
// stops it before it fires, the next write re-arms it. Once a timer fired
// (Stop fails), its function may still be about to run, so the write
// that armed it makes sure that function does nothing after it (or waits
// for its reset), and the next write gets a new timer and generation.
type streamWriter struct {
	http.ResponseWriter
	dl      writeDeadliner
	d       time.Duration
	timer   *time.Timer // the current generation's; nil before a write or after one fired
	gen     uint64      // the current generation
	state   atomic.Uint64
	mu      sync.Mutex // held by a timer's function while it resets
	pending bool       // bytes written since the last flush
}

// The phases of a streamWriter's state, in its low two bits; the
// generation is in the bits above.
const (
	idle      uint64 = iota // no write in progress: the timer does nothing
	writing                 // a write is in progress, the timer armed
	resetting               // the timer fired during the write: it resets
)

func phase(gen, ph uint64) uint64 { return gen<<2 | ph }

func (w *streamWriter) Write(p []byte) (int, error) {
	w.begin()
	defer w.end()
	n, err := w.ResponseWriter.Write(p)
	w.pending = w.pending || n > 0
	return n, err
}

// Flush writes what the server holds, under the same bound.
func (w *streamWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *streamWriter) FlushError() error {
	w.begin()
	defer w.end()
	w.pending = false
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the server's writer.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// begin arms the timer for a write.
func (w *streamWriter) begin() {
	w.state.Store(phase(w.gen, writing))
	if w.timer == nil {
		gen := w.gen
		w.timer = time.AfterFunc(w.d, func() { w.reset(gen) })
		return
	}
	w.timer.Reset(w.d)
}

// end disarms the timer after a write. When the timer fired, its function
// either finds the write ended and does nothing, or has reset the stream
// (end waits for that), and the next write gets a new generation.
func (w *streamWriter) end() {
	if w.timer.Stop() {
		w.state.Store(phase(w.gen, idle))
		return
	}
	if !w.state.CompareAndSwap(phase(w.gen, writing), phase(w.gen, idle)) {
		w.waitReset()
	}
	w.gen++
	w.timer = nil
}

// waitReset returns once the reset under way is done: it holds mu
// throughout.
func (w *streamWriter) waitReset() {
	w.mu.Lock()
	defer w.mu.Unlock()
}

// reset gives the stream up if the write of generation gen is still in
// progress: the server queues RST_STREAM and the write waiting on it
// returns an error.
func (w *streamWriter) reset(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.state.CompareAndSwap(phase(gen, writing), phase(gen, resetting)) {
		return
	}
	_ = w.dl.SetWriteDeadline(time.Unix(1, 0))
}
