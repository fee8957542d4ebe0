package front

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// response is the http.ResponseWriter of a request Server serves. It
// behaves as net/http's (server.go, chunkWriter.writeHeader): the head
// goes out once the body outgrows bufferBeforeChunking bytes, at a Flush
// or when the handler returns; a body that ended within that buffer gets a
// Content-Length, a longer one without it is chunked; a missing
// Content-Type is sniffed; Date is added; bodies of HEAD responses are
// counted and dropped, those of 1xx, 204 and 304 refused (with the
// header fields those statuses must not carry); trailers (declared in
// "Trailer" or set with http.TrailerPrefix) follow a chunked body.
type response struct {
	cc          *conn
	req         *http.Request
	bw          out
	pending     []byte // body written before the head is out
	header      http.Header
	status      int
	wroteHeader bool // a final status is set
	committed   bool // the head is written
	head        bool // the request's method is HEAD
	chunked     bool
	length      int64 // the Content-Length, -1 when none
	written     int64
	closeAfter  bool
	handlerDone bool
	hijacked    bool
}

// bufferBeforeChunking is net/http's bufferBeforeChunkingSize.
const bufferBeforeChunking = 2048

var responses = sync.Pool{New: func() any {
	return &response{
		bw:      out{buf: make([]byte, 0, outSize)},
		pending: make([]byte, 0, bufferBeforeChunking),
		header:  make(http.Header, 8),
	}
}}

func getResponse(cc *conn, r *http.Request) *response {
	w := responses.Get().(*response)
	w.cc, w.req = cc, r
	w.bw.reset(cc.c, cc.cancel)
	w.head = r.Method == http.MethodHead
	w.length = -1
	return w
}

func putResponse(w *response) {
	w.bw.reset(nil, nil)
	clear(w.header)
	*w = response{bw: out{buf: w.bw.buf[:0]}, pending: w.pending[:0], header: w.header}
	responses.Put(w)
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader || w.hijacked {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			w.cc.s.logf("http: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
		}
	}
}

// informational writes a 1xx response at once, as net/http does.
func (w *response) informational(code int) {
	writeStatusLine(&w.bw, code)
	w.writeFields(nil)
	w.bw.WriteString("\r\n")
	_ = w.bw.flush()
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.length != -1 && w.written > w.length {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		if len(w.pending)+len(p) <= bufferBeforeChunking {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		first := p
		if len(w.pending) > 0 {
			first = w.pending
		}
		w.commit(first)
		if _, err := w.send(w.pending); err != nil {
			return 0, err
		}
	}
	return w.send(p)
}

// send writes body bytes after the head, framed.
func (w *response) send(p []byte) (int, error) {
	switch {
	case len(p) == 0:
		return 0, nil
	case w.head:
		return len(p), nil
	case !w.chunked:
		return w.bw.write(p, false)
	}
	w.bw.buf = strconv.AppendInt(w.bw.buf, int64(len(p)), 16)
	w.bw.WriteString("\r\n")
	return w.bw.write(p, true)
}

// Flush sends the head, if it is not out, and what is buffered.
func (w *response) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.commitPending()
	_ = w.bw.flush()
}

// commitPending writes the head, if it is not out, and the body buffered
// before it.
func (w *response) commitPending() {
	if !w.committed {
		w.commit(w.pending)
		_, _ = w.send(w.pending)
	}
}

// finish ends the response once the handler returned and reports whether
// the connection may carry another request.
func (w *response) finish() bool {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.commitPending()
	if w.chunked {
		w.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.bw.WriteString("\r\n")
	}
	if w.length != -1 && w.written != w.length && !w.head && bodyAllowed(w.status) {
		// The body is shorter than announced: the client cannot tell
		// where the next response starts.
		w.closeAfter = true
	}
	return w.bw.flush() == nil && !w.closeAfter
}

// Hijack gives the connection to the handler, as net/http's does: what
// the response buffered is sent first, and the returned reader holds the
// bytes the client sent after the request.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.committed {
		if err := w.bw.flush(); err != nil {
			return nil, nil, err
		}
	}
	cc := w.cc
	cc.stopWatch()
	// The handler's now: Shutdown and Close leave it (and no longer read
	// cc.c, which changes).
	cc.s.untrackConn(cc)
	c, err := asNetConn(cc.c)
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	cc.c = c
	rest := &handedConn{Conn: cc.c, buf: bytes.Clone(cc.buf[cc.r:cc.w])}
	cc.r = cc.w
	_ = cc.c.SetDeadline(time.Time{})
	return cc.c, bufio.NewReadWriter(bufio.NewReader(rest), bufio.NewWriter(cc.c)), nil
}

// SetReadDeadline sets the connection's read deadline, which only a
// hijacked connection's reads see: the request has no body.
func (w *response) SetReadDeadline(t time.Time) error { return w.cc.c.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of the response's writes.
func (w *response) SetWriteDeadline(t time.Time) error { return w.cc.c.SetWriteDeadline(t) }

// EnableFullDuplex has nothing to do: requests Server serves have no body.
func (w *response) EnableFullDuplex() error { return nil }
