package sendtimeout

import (
	"net/http"
	"runtime"
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
// The bound is per write: a Write or Flush of the response (the proxy
// writes at most a 64 KiB buffer at a time) that has not returned after d
// resets the stream (RST_STREAM, INTERNAL_ERROR), and the write fails. The
// bytes the server still holds when the handler returns (its buffer, up
// to 4 KiB, which it writes after the handler ends) get d from then. A
// stream that waits for its backend between writes is not counted: an
// idle event stream is never cut off. So a client must take a write's
// bytes within d, at least 64 KiB per minute at the default timeout.
func Streams(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			h.ServeHTTP(w, r)
			return
		}
		dl, ok := w.(writeDeadliner)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		sw := &streamWriter{ResponseWriter: w, dl: dl, d: d}
		h.ServeHTTP(sw, r)
		sw.handlerDone()
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
// touch the server's writer only while a write is in progress: once the
// handler returned, the server recycles the writer.
type streamWriter struct {
	http.ResponseWriter
	dl    writeDeadliner
	d     time.Duration
	timer *time.Timer // made at the first write, armed only during writes
	state atomic.Int32
	wrote bool // a body byte was written: the server may hold some
}

// The states of a streamWriter, between its writes and its timer.
const (
	idle      int32 = iota // no write in progress: the timer does nothing
	writing                // a write is in progress, the timer armed
	resetting              // the timer fired during the write: it resets
	wasReset               // the reset is done
)

func (w *streamWriter) Write(p []byte) (int, error) {
	w.begin()
	n, err := w.ResponseWriter.Write(p)
	w.end()
	w.wrote = w.wrote || n > 0
	return n, err
}

// Flush writes what the server holds, under the same bound.
func (w *streamWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *streamWriter) FlushError() error {
	w.begin()
	err := http.NewResponseController(w.ResponseWriter).Flush()
	w.end()
	return err
}

// Unwrap gives http.ResponseController the server's writer.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// begin arms the timer for a write.
func (w *streamWriter) begin() {
	w.state.Store(writing)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.d, w.reset)
		return
	}
	w.timer.Reset(w.d)
}

// end disarms the timer after a write. When the timer fired meanwhile and
// its reset is under way, end waits for it, so that the reset is done
// before the handler may return.
func (w *streamWriter) end() {
	w.timer.Stop()
	if w.state.CompareAndSwap(writing, idle) {
		return
	}
	for w.state.Load() != wasReset {
		runtime.Gosched() // a reset only queues a frame: it is short
	}
}

// reset gives the stream up, unless the write already ended: the server
// queues RST_STREAM and the write waiting on it returns an error.
func (w *streamWriter) reset() {
	if !w.state.CompareAndSwap(writing, resetting) {
		return
	}
	_ = w.dl.SetWriteDeadline(time.Unix(1, 0))
	w.state.Store(wasReset)
}

// handlerDone bounds the write the server makes of what it holds after the
// handler returned, with the stream's own deadline, which the server stops
// when the stream ends. A response without body bytes ends with its
// headers, which flow control does not hold.
func (w *streamWriter) handlerDone() {
	if w.wrote {
		_ = w.dl.SetWriteDeadline(time.Now().Add(w.d))
	}
}
