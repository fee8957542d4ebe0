package front

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cutoverproxy/cutover/internal/httpsyntax"
	"golang.org/x/net/http/httpguts"
)

// commit decides the response's framing and writes its head, as
// net/http's chunkWriter.writeHeader does. p is the start of the body,
// for a length (when the handler returned) and for sniffing.
func (w *response) commit(p []byte) {
	w.committed = true
	h := w.header
	trailers := h["Trailer"] != nil
	for k := range h {
		trailers = trailers || strings.HasPrefix(k, http.TrailerPrefix)
	}
	te := h.Get("Transfer-Encoding")
	if w.handlerDone && !trailers && te == "" && bodyAllowed(w.status) && w.length == -1 && (!w.head || len(p) > 0) {
		w.length = int64(len(p))
		h["Content-Length"] = []string{strconv.Itoa(len(p))}
	}
	w.closeAfter = w.req.Close || h.Get("Connection") == "close" || w.cc.s.shutting.Load()
	if bodyAllowed(w.status) {
		if _, ok := h["Content-Type"]; !ok && h.Get("Content-Encoding") == "" && te == "" && len(p) > 0 {
			h["Content-Type"] = []string{http.DetectContentType(p)}
		}
	} else {
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		if w.status == http.StatusNotModified {
			h.Del("Content-Type")
		}
		w.length = -1
	}
	if w.length != -1 && te != "" && te != "identity" {
		w.cc.s.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.length)
		h.Del("Content-Length")
		w.length = -1
	}
	switch {
	case w.head || !bodyAllowed(w.status) || w.length != -1:
		h.Del("Transfer-Encoding")
	case te == "identity":
		w.closeAfter = true
		h.Del("Transfer-Encoding")
	default:
		w.chunked = true
		if te == "chunked" {
			h.Del("Transfer-Encoding")
		}
		h.Del("Content-Length")
	}
	w.writeHead()
}

// writeHead writes the status line and the header fields.
func (w *response) writeHead() {
	h := w.header
	closeField := w.closeAfter && !hasToken(h.Get("Connection"), "close")
	writeStatusLine(&w.bw, w.status)
	declared := h["Trailer"]
	w.writeFields(func(k string) bool {
		return closeField && k == "Connection" || strings.HasPrefix(k, http.TrailerPrefix) ||
			declared != nil && declares(declared, k)
	})
	if _, ok := h["Date"]; !ok {
		w.bw.WriteString("Date: ")
		w.bw.WriteString(*w.cc.s.date.Load())
		w.bw.WriteString("\r\n")
	}
	if w.chunked {
		w.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closeField {
		w.bw.WriteString("Connection: close\r\n")
	}
	w.bw.WriteString("\r\n")
}

// writeFields writes the header's fields but those skip names, in key
// order, as net/http writes them: the same response is the same bytes.
func (w *response) writeFields(skip func(k string) bool) {
	var buf [16]string
	keys := buf[:0]
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if skip == nil || !skip(k) {
			writeField(&w.bw, k, w.header[k])
		}
	}
}

// declares reports whether the "Trailer" fields name k. Their values are
// set after the body (net/http's head holds the header as it was at
// WriteHeader, before them).
func declares(trailer []string, k string) bool {
	for t := range listElems(trailer...) {
		if http.CanonicalHeaderKey(t) == k {
			return true
		}
	}
	return false
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// writeField writes a field, as net/http does: a name that is not a token
// is left out, line breaks in values become spaces.
func writeField(bw *out, k string, vs []string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	for _, v := range vs {
		if strings.ContainsAny(v, "\r\n") {
			v = newlineToSpace.Replace(v)
		}
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(httpsyntax.TrimOWS(v))
		bw.WriteString("\r\n")
	}
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// writeTrailers writes the trailers: the fields named in "Trailer" and
// those set with http.TrailerPrefix.
func (w *response) writeTrailers() {
	for t := range listElems(w.header["Trailer"]...) {
		if k := http.CanonicalHeaderKey(t); httpguts.ValidTrailerHeader(k) {
			writeField(&w.bw, k, w.header[k])
		}
	}
	for k, vs := range w.header {
		if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidTrailerHeader(t) {
			writeField(&w.bw, http.CanonicalHeaderKey(t), vs)
		}
	}
}

// writeStatusLine writes "HTTP/1.1 200 OK\r\n", with net/http's text for
// codes it does not know.
func writeStatusLine(bw *out, code int) {
	if code == http.StatusOK {
		bw.WriteString("HTTP/1.1 200 OK\r\n")
		return
	}
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString("HTTP/1.1 ")
	bw.buf = strconv.AppendInt(bw.buf, int64(code), 10)
	bw.WriteString(" ")
	bw.WriteString(text)
	bw.WriteString("\r\n")
}
