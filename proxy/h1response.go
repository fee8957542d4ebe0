package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/cutoverproxy/cutover/internal/httpsyntax"
	"golang.org/x/net/http/httpguts"
)

var crlfcrlf = []byte("\r\n\r\n")

// readResponse reads one response to r from br. A head in the form most
// backends send, whose bytes are all in br's buffer, is parsed by
// parseResponse with a handful of allocations: the head as one string that
// keys and values share, the header map and its values, the Response with
// its body. http.ReadResponse allocates a string per key and value and
// more per response; it reads any other head, from its first byte, so the
// fast path is never more lenient than net/http. What parseResponse takes,
// ReadResponse reads the same way, field for field: the tests and
// FuzzReadFinalResponse compare them.
func readResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	if br.Buffered() == 0 {
		// Wait for the first bytes as ReadResponse would, and fail as it
		// does: a connection that ends before its response is an
		// unexpected EOF. The Peek reads from the h1conn, within its
		// limit, as ReadResponse's first read would.
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	buf, _ := br.Peek(br.Buffered())
	n := bytes.Index(buf, crlfcrlf)
	if n < 0 {
		return http.ReadResponse(br, r)
	}
	n += len(crlfcrlf)
	res, ok := parseResponse(string(buf[:n]), br, r)
	if !ok {
		return http.ReadResponse(br, r)
	}
	br.Discard(n) // buffered: it cannot fail
	return res, nil
}

// parseResponse parses head, a status line and header lines, each ending
// in CRLF, then the empty line, of a response to r whose body follows on
// br. It takes an HTTP/1.1 response with a final status (200 to 599) whose
// body has a Content-Length, or has none (HEAD, 204, 304); it reports false
// for any other, and for every byte or form it does not expect.
func parseResponse(head string, br *bufio.Reader, r *http.Request) (*http.Response, bool) {
	line, lines, _ := strings.Cut(head, "\r\n")
	code, ok := statusLine(line)
	if !ok {
		return nil, false
	}
	fr := new(fastResponse)
	h, ok := parseHeader(lines, fr.values[:])
	if !ok {
		return nil, false
	}
	res := &fr.res
	*res = http.Response{
		Status:     line[len("HTTP/1.1 "):],
		StatusCode: code,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Close:      connectionClose(h),
		Request:    r,
	}
	fixPragmaCacheControl(h)
	if !setBody(res, &fr.body, br) {
		return nil, false
	}
	return res, true
}

// statusLine parses "HTTP/1.1 NNN reason" (or "HTTP/1.1 NNN", without a
// reason) with a status from 200 to 599 and a reason of the bytes a
// header value may have. ReadResponse takes the status (Response.Status)
// as it is, after the version and its space.
func statusLine(line string) (code int, ok bool) {
	status, ok := strings.CutPrefix(line, "HTTP/1.1 ")
	if !ok || len(status) < 3 || len(status) > 3 && status[3] != ' ' ||
		!httpguts.ValidHeaderFieldValue(status) {
		return 0, false
	}
	for i := range 3 {
		c := status[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 200 && code <= 599
}

// parseHeader parses header lines up to and including the empty line, as
// textproto reads them, into a header whose keys and values are
// substrings of lines (but for keys not in canonical form). It reports
// false for a line headerLine refuses, and for Transfer-Encoding and
// Trailer, which net/http reads in ways of their own. Single values are
// stored in values when it has room for them, else in an array of their
// own.
func parseHeader(lines string, values []string) (http.Header, bool) {
	n := strings.Count(lines, "\r\n") - 1 // the empty line holds no field
	h := make(http.Header, n)
	if len(values) < n {
		values = make([]string, n) // one backing array for single values, as textproto does
	}
	for {
		line, rest, _ := strings.Cut(lines, "\r\n")
		lines = rest
		if line == "" {
			return h, true
		}
		key, value, ok := headerLine(line)
		if !ok || key == "Transfer-Encoding" || key == "Trailer" {
			return nil, false
		}
		if vs := h[key]; vs != nil {
			h[key] = append(vs, value)
			continue
		}
		values[0] = value
		h[key] = values[:1:1]
		values = values[1:]
	}
}

// headerLine splits "Name: value": a name of token bytes, in canonical
// form, and a value trimmed of the spaces and tabs around it, of bytes a
// field value may have (no control bytes but tab, obs-text allowed). A
// line that starts with a space or tab (a folded line) has no token name.
func headerLine(line string) (key, value string, ok bool) {
	name, value, ok := strings.Cut(line, ":")
	if !ok || !httpguts.ValidHeaderFieldName(name) {
		return "", "", false
	}
	value = httpsyntax.TrimOWS(value)
	if !httpguts.ValidHeaderFieldValue(value) {
		return "", "", false
	}
	return textproto.CanonicalMIMEHeaderKey(name), value, true
}

// connectionClose reports whether an HTTP/1.1 response's Connection
// header has "close"; if so, it removes the header, as ReadResponse does.
func connectionClose(h http.Header) bool {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		return false
	}
	delete(h, "Connection")
	return true
}

// fixPragmaCacheControl adds "Cache-Control: no-cache" when the first
// Pragma is "no-cache" and there is no Cache-Control, as ReadResponse
// does (RFC 7234, section 5.4).
func fixPragmaCacheControl(h http.Header) {
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
}

// fastResponse is a response that parseResponse read, with the body it has
// if it has a Content-Length and the single values of its header (when
// there are no more than values holds): one allocation instead of three.
type fastResponse struct {
	res    http.Response
	body   lengthBody
	values [8]string
}

// setBody sets res's ContentLength and Body as ReadResponse does, the body
// (if any) is body, read from br. It reports false for a response whose
// Content-Length header is not a single decimal number, and for one whose
// body lasts until the connection closes.
func setBody(res *http.Response, body *lengthBody, br *bufio.Reader) bool {
	n, ok := contentLength(res.Header["Content-Length"])
	if !ok {
		return false
	}
	switch {
	case res.Request != nil && res.Request.Method == http.MethodHead:
		res.ContentLength = n // -1 when there is none
		res.Body = http.NoBody
	case res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified:
		res.ContentLength = 0
		res.Body = http.NoBody
	case n < 0:
		return false // a body until close: ReadResponse's
	case n == 0:
		res.Body = http.NoBody
	default:
		res.ContentLength = n
		*body = lengthBody{src: io.LimitedReader{R: br, N: n}, closing: res.Close}
		res.Body = body
	}
	return true
}

// contentLength returns the value of the Content-Length header vs, -1
// when there is none. It reports false for more than one, and for a value
// that ReadResponse does not read as a plain decimal number. (It would
// take repeated equal values; they are left to it.)
func contentLength(vs []string) (int64, bool) {
	switch len(vs) {
	case 0:
		return -1, true
	case 1:
		n, err := strconv.ParseUint(vs[0], 10, 63)
		return int64(n), err == nil
	}
	return 0, false
}

// lengthBody is the body of a response with a Content-Length, read from
// the connection's reader. It reads, ends and closes as net/http's body
// does: an early end of the stream is io.ErrUnexpectedEOF, io.EOF comes
// with the last bytes and on every read after the end (an early one too),
// and Close reads the rest unless the connection is to be closed. Unlike
// net/http's, it is not safe for concurrent use, which h1body, its only
// user and itself not safe for it, does not need.
type lengthBody struct {
	src     io.LimitedReader
	closing bool // the connection closes after the response
	sawEOF  bool
	closed  bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	n, err := b.src.Read(p)
	switch {
	case err == io.EOF:
		b.sawEOF = true
		if b.src.N > 0 {
			err = io.ErrUnexpectedEOF
		}
	case err == nil && n > 0 && b.src.N == 0:
		b.sawEOF = true
		err = io.EOF
	}
	return n, err
}

func (b *lengthBody) Close() error {
	if b.closed {
		return nil
	}
	var err error
	if !b.sawEOF && !b.closing {
		_, err = io.Copy(io.Discard, b)
	}
	b.closed = true
	return err
}
