package front

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// response is the http.ResponseWriter of a request Server serves. Like
// net/http's: the header goes out with the first body bytes, a Flush or
// the handler's return, framed by the Content-Length the handler set or
// else chunked; a handler that writes nothing gets "Content-Length: 0";
// a missing Content-Type is sniffed from the first write; Date is added
// when missing; bodies of HEAD responses are dropped, those of 1xx, 204
// and 304 refused; trailers (declared in "Trailer" or set with
// http.TrailerPrefix) follow a chunked body.
type response struct {
	cc          *conn
	req         *http.Request
	bw          *bufio.Writer
	header      http.Header
	status      int
	wroteHeader bool // a final status is set
	committed   bool // the head is in bw
	head        bool // the request's method is HEAD
	noBody      bool // the status allows no body
	chunked     bool
	length      int64 // the Content-Length sent, -1 when none
	written     int64
	closeAfter  bool
}

var responses = sync.Pool{New: func() any {
	return &response{bw: bufio.NewWriterSize(nil, 4<<10), header: make(http.Header, 8)}
}}

func getResponse(cc *conn, r *http.Request) *response {
	w := responses.Get().(*response)
	w.cc, w.req = cc, r
	w.bw.Reset(cc.c)
	w.head = r.Method == http.MethodHead
	w.length = -1
	return w
}

func putResponse(w *response) {
	w.bw.Reset(nil)
	clear(w.header)
	*w = response{bw: w.bw, header: w.header}
	responses.Put(w)
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
}

// informational writes a 1xx response at once, as net/http does.
func (w *response) informational(code int) {
	writeStatusLine(w.bw, code)
	w.writeFields(false)
	w.bw.WriteString("\r\n")
	_ = w.bw.Flush()
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(p, false)
	}
	switch {
	case w.head:
		return len(p), nil
	case w.noBody:
		return 0, http.ErrBodyNotAllowed
	case w.length >= 0 && w.written+int64(len(p)) > w.length:
		return 0, http.ErrContentLength
	case len(p) == 0:
		return 0, nil
	}
	w.written += int64(len(p))
	if !w.chunked {
		return w.bw.Write(p)
	}
	w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
	w.bw.WriteString("\r\n")
	n, err := w.bw.Write(p)
	if err == nil {
		_, err = w.bw.WriteString("\r\n")
	}
	return n, err
}

// Flush sends the head, if it is not out, and what is buffered.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(nil, false)
	}
	_ = w.bw.Flush()
}

// commit decides the framing and writes the head to bw. first is the
// first body write, for sniffing; end means the handler returned.
func (w *response) commit(first []byte, end bool) {
	w.committed = true
	h := w.header
	w.noBody = w.status < 200 || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	trailers := h["Trailer"] != nil
	if cl := h["Content-Length"]; len(cl) == 1 && !trailers {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	if _, ok := h["Content-Type"]; !ok && len(first) > 0 && !w.noBody {
		h["Content-Type"] = []string{http.DetectContentType(first)}
	}
	switch {
	case w.noBody || w.length >= 0:
	case end && !trailers:
		w.length = 0
		if !w.head {
			h["Content-Length"] = zeroLength
		}
	case !w.head:
		w.chunked = true
	}
	w.closeAfter = w.req.Close || hasToken(strings.Join(h["Connection"], ","), "close") || w.cc.s.shutting.Load()
	writeStatusLine(w.bw, w.status)
	w.writeFields(true)
	if _, ok := h["Date"]; !ok {
		w.bw.WriteString("Date: ")
		w.bw.WriteString(*w.cc.s.date.Load())
		w.bw.WriteString("\r\n")
	}
	if w.chunked {
		w.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		w.bw.WriteString("Connection: close\r\n")
	}
	w.bw.WriteString("\r\n")
}

var zeroLength = []string{"0"}

// writeFields writes the header's fields but for trailers and, in a final
// response, the framing fields Server writes itself.
func (w *response) writeFields(final bool) {
	for k, vs := range w.header {
		switch {
		case final && (k == "Connection" || k == "Transfer-Encoding" || w.chunked && k == "Content-Length"),
			strings.HasPrefix(k, http.TrailerPrefix):
			continue
		}
		writeField(w.bw, k, vs)
	}
}

// writeField writes a field, as net/http does: a name that is not a token
// is left out, line breaks in values become spaces.
func writeField(bw *bufio.Writer, k string, vs []string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	for _, v := range vs {
		if strings.ContainsAny(v, "\r\n") {
			v = newlineToSpace.Replace(v)
		}
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(strings.Trim(v, " \t"))
		bw.WriteString("\r\n")
	}
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// finish ends the response once the handler returned and reports whether
// the connection may carry another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(nil, true)
	}
	if w.chunked {
		w.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.bw.WriteString("\r\n")
	}
	if w.length >= 0 && w.written < w.length && !w.head {
		// The body is shorter than announced: the client cannot tell
		// where the next response starts.
		w.closeAfter = true
	}
	return w.bw.Flush() == nil && !w.closeAfter
}

// writeTrailers writes the trailers: the fields named in "Trailer" and
// those set with http.TrailerPrefix.
func (w *response) writeTrailers() {
	for _, list := range w.header["Trailer"] {
		for k := range strings.SplitSeq(list, ",") {
			k = http.CanonicalHeaderKey(strings.Trim(k, " \t"))
			if vs := w.header[k]; k != "" {
				writeField(w.bw, k, vs)
			}
		}
	}
	for k, vs := range w.header {
		if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeField(w.bw, http.CanonicalHeaderKey(t), vs)
		}
	}
}

// writeStatusLine writes "HTTP/1.1 200 OK\r\n", with net/http's text for
// codes it does not know.
func writeStatusLine(bw *bufio.Writer, code int) {
	if code == http.StatusOK {
		bw.WriteString("HTTP/1.1 200 OK\r\n")
		return
	}
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(text)
	bw.WriteString("\r\n")
}
