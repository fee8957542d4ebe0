package proxy

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// stdReadFinalResponse is readFinalResponse with net/http's ReadResponse
// for every head, as it was before the fast path: the reference the tests
// hold readFinalResponse to.
func stdReadFinalResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	for {
		res, err := http.ReadResponse(br, r)
		if err != nil {
			return nil, err
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			return res, nil
		}
	}
}

const typicalHead = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Thu, 26 Nov 2026 15:00:00 GMT\r\n\r\n"

var typicalResponse = typicalHead + strings.Repeat("x", 100)

// responseCase is a stream of bytes a backend sends.
type responseCase struct{ name, raw string }

// responseCases are the streams the differential tests read both ways.
func responseCases() []responseCase {
	ok := func(name, head string) responseCase {
		return responseCase{name, "HTTP/1.1 200 OK\r\n" + head + "Content-Length: 2\r\n\r\nok"}
	}
	many := ""
	for i := range 40 {
		many += fmt.Sprintf("X-Header-%d: value %d\r\n", i, i)
	}
	bigBody := strings.Repeat("0123456789abcdef", 1<<14)
	cases := []responseCase{
		{"typical", typicalResponse},
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
		{"chunked with a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n"},
		{"content length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"conflicting content lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"repeated equal content lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length:  5\r\n\r\nhello"},
		{"negative content length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello"},
		{"content length with a plus", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"},
		{"content length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"},
		{"content length in hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello"},
		{"content length with an inner space", "HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nhello"},
		{"content length with leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 005\r\n\r\nhello"},
		{"content length with spaces and tabs around", "HTTP/1.1 200 OK\r\nContent-Length: \t 5 \t\r\n\r\nhello"},
		{"empty content length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello"},
		{"content length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"content length 0, then bytes", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nstray"},
		{"largest content length", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nhello"},
		{"content length over 63 bits", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nhello"},
		{"big content length", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(bigBody), bigBody)},
		{"lower-case content length", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"},
		{"upper-case content length", "HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 2\r\n\r\nok"},
		{"unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"identity transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok"},
		{"trailer without chunks", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\nok"},
		{"NUL in a header value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{"header line without a colon", "HTTP/1.1 200 OK\r\nX-A a\r\nContent-Length: 0\r\n\r\n"},
		{"space before the colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n"},
		{"empty name", "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 0\r\n\r\n"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"},
		{"no body at all", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"},
		{"bad status line", "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"empty stream", ""},
		{"CRLF only", "\r\n\r\n"},
		{"status line only", "HTTP/1.1 200 OK\r\n"},
		{"head cut short", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"},
		{"early hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"two early hints", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.js>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"},
		{"100 continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes"},
		{"HTTP/1.0, body until close", "HTTP/1.0 200 OK\r\n\r\nuntil close"},
		{"HTTP/1.0 with a length", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"lower-case version", "http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/1.1, body until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n"},
		{"204 with a length", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"},
		{"204 with a bad length", "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n"},
		{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nEtag: \"x\"\r\n\r\n"},
		{"304", "HTTP/1.1 304 Not Modified\r\n\r\n"},
		{"205 with length 0", "HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n"},
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"},
		{"500", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"},
		{"599", "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n"},
		{"600", "HTTP/1.1 600 Beyond\r\nContent-Length: 0\r\n\r\n"},
		{"999", "HTTP/1.1 999 Beyond\r\nContent-Length: 0\r\n\r\n"},
		{"099", "HTTP/1.1 099 Below\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"},
		{"empty reason", "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"},
		{"two spaces before the status", "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"two spaces after the status", "HTTP/1.1 200  OK\r\nContent-Length: 2\r\n\r\nok"},
		{"reason with trailing spaces", "HTTP/1.1 200 OK  \r\nContent-Length: 2\r\n\r\nok"},
		{"no space after the status", "HTTP/1.1 200OK\r\nContent-Length: 2\r\n\r\nok"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"non-ASCII reason", "HTTP/1.1 200 Bien re\xc3\xa7u\r\nContent-Length: 2\r\n\r\nok"},
		{"invalid UTF-8 reason", "HTTP/1.1 200 \xff\xfe\r\nContent-Length: 2\r\n\r\nok"},
		{"tab in the reason", "HTTP/1.1 200 O\tK\r\nContent-Length: 2\r\n\r\nok"},
		{"CR in the reason", "HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok"},
		{"bare LF everywhere", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{"bare LF after the status line", "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok"},
		{"bare LF in the headers", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok"},
		{"bare LF ends the head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok\r\n\r\n"},
		{"bare LF starts a header line", "HTTP/1.1 200 OK\r\n\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"},
		{"CR in a value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok"},
		{"obs-fold with a tab", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2\r\nContent-Length: 2\r\n\r\nok"},
		{"first header line starts with a space", "HTTP/1.1 200 OK\r\n X-A: 1\r\nContent-Length: 2\r\n\r\nok"},
		{"first header line starts with a tab", "HTTP/1.1 200 OK\r\n\tX-A: 1\r\nContent-Length: 2\r\n\r\nok"},
		{"head larger than the reader's buffer", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
		{"many headers", "HTTP/1.1 200 OK\r\n" + many + "Content-Length: 2\r\n\r\nok"},
		ok("no space after the colon", "X-A:v\r\n"),
		ok("spaces and tabs around the value", "X-A: \t v \t \r\n"),
		ok("inner spaces", "X-A: a  b\t c\r\n"),
		ok("empty value", "X-A:\r\n"),
		ok("blank value", "X-A:  \t \r\n"),
		ok("colon in the value", "Location: http://a:80/x?y=z:1\r\n"),
		ok("obs-text in a value", "X-A: caf\xc3\xa9 \xff\r\n"),
		ok("DEL in a value", "X-A: a\x7fb\r\n"),
		ok("repeated headers", "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n"),
		ok("repeated in two forms", "X-A: 1\r\nx-a: 2\r\nX-B: 3\r\nX-A: 4\r\n"),
		ok("non-canonical names", "content-type: text/html\r\nx-forwarded-for: a\r\netag: \"e\"\r\nwww-authenticate: Basic\r\nX-ABC-def: 1\r\n"),
		ok("names of odd tokens", "x_y: 1\r\na: 2\r\n1-2: 3\r\nX--A: 4\r\n-x: 5\r\nX!#$%&'*+.^_`|~: 6\r\n"),
		ok("non-token name", "X(A): 1\r\n"),
		ok("non-ASCII name", "X-Caf\xc3\xa9: 1\r\n"),
		ok("connection close", "Connection: close\r\n"),
		ok("connection Close", "connection: Close\r\n"),
		ok("connection keep-alive", "Connection: keep-alive\r\n"),
		ok("connection keep-alive, close", "Connection: keep-alive, close\r\n"),
		ok("connection close twice", "Connection: x\r\nConnection: close\r\n"),
		ok("connection closed", "Connection: closed\r\n"),
		ok("connection list with empty elements", "Connection: , close ,\r\n"),
		ok("connection upgrade", "Connection: upgrade\r\nUpgrade: websocket\r\n"),
		ok("keep-alive header", "Connection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\n"),
		ok("pragma no-cache", "Pragma: no-cache\r\n"),
		ok("pragma no-cache with cache-control", "Pragma: no-cache\r\nCache-Control: max-age=0\r\n"),
		ok("pragma No-Cache", "Pragma: No-Cache\r\n"),
		ok("second pragma no-cache", "Pragma: x\r\nPragma: no-cache\r\n"),
		ok("pragma no-cache, empty cache-control", "Cache-Control:\r\npragma: no-cache\r\n"),
		{"two responses back to back", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 404 Not Found\r\nContent-Length: 6\r\n\r\nsecond"},
		{"three, with a 204 between", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nb"},
		{"a response, then garbage", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokgarbage\r\n\r\n"},
		{"a body longer than its length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokay"},
		{"a response, then a bare-LF one", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
	}
	return append(cases, byteSweep()...)
}

// byteSweep puts every byte value in the reason, a header name and a
// header value.
func byteSweep() []responseCase {
	var cases []responseCase
	for b := range 256 {
		c := string([]byte{byte(b)})
		cases = append(cases,
			responseCase{fmt.Sprintf("byte %#x in the reason", b), "HTTP/1.1 200 O" + c + "K\r\nContent-Length: 2\r\n\r\nok"},
			responseCase{fmt.Sprintf("byte %#x in the status", b), "HTTP/1.1 2" + c + "0 OK\r\nContent-Length: 2\r\n\r\nok"},
			responseCase{fmt.Sprintf("byte %#x in a name", b), "HTTP/1.1 200 OK\r\nX-" + c + "a: 1\r\nContent-Length: 2\r\n\r\nok"},
			responseCase{fmt.Sprintf("byte %#x starting a name", b), "HTTP/1.1 200 OK\r\n" + c + "x: 1\r\nContent-Length: 2\r\n\r\nok"},
			responseCase{fmt.Sprintf("byte %#x in a value", b), "HTTP/1.1 200 OK\r\nX-A: a" + c + "b\r\nContent-Length: 2\r\n\r\nok"},
			responseCase{fmt.Sprintf("byte %#x around a value", b), "HTTP/1.1 200 OK\r\nX-A:" + c + "a" + c + "\r\nContent-Length: 2\r\n\r\nok"},
			responseCase{fmt.Sprintf("byte %#x in the content length", b), "HTTP/1.1 200 OK\r\nContent-Length: 1" + c + "\r\n\r\nok"},
		)
	}
	return cases
}

// chunkReader returns its bytes in reads of at most size bytes, then err
// (io.EOF when nil).
type chunkReader struct {
	data []byte
	size int
	err  error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := min(len(p), r.size, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readShape is how the stream arrives at the reader.
type readShape struct {
	name    string
	bufSize int
	src     func(raw string) io.Reader
}

var errConnReset = errors.New("connection reset")

func readShapes(raw string) []readShape {
	whole := func(raw string) io.Reader { return strings.NewReader(raw) }
	shapes := []readShape{
		{"whole", 16 << 10, whole},
		{"whole, 64-byte buffer", 64, whole},
		{"one byte at a time", 16 << 10, func(raw string) io.Reader { return iotest.OneByteReader(strings.NewReader(raw)) }},
		{"reads of 7", 16 << 10, func(raw string) io.Reader { return &chunkReader{data: []byte(raw), size: 7} }},
		{"reads of 7 into 16 bytes", 16, func(raw string) io.Reader { return &chunkReader{data: []byte(raw), size: 7} }},
		{"whole, then a reset", 16 << 10, func(raw string) io.Reader {
			return &chunkReader{data: []byte(raw), size: len(raw), err: errConnReset}
		}},
		{"data and EOF together", 16 << 10, func(raw string) io.Reader { return iotest.DataErrReader(strings.NewReader(raw)) }},
	}
	// Heads across the buffer's edge: the stream in two reads, cut
	// around the end of the first head.
	if end := strings.Index(raw, "\r\n\r\n"); end >= 0 {
		for _, cut := range []int{end - 1, end + 1, end + 3, end + 4} {
			if cut > 0 && cut < len(raw) {
				shapes = append(shapes, readShape{fmt.Sprintf("cut at %d", cut), 16 << 10, func(raw string) io.Reader {
					return io.MultiReader(strings.NewReader(raw[:cut]), strings.NewReader(raw[cut:]))
				}})
			}
		}
	}
	return shapes
}

// bodyMode is how the test reads each body.
type bodyMode int

const (
	readToEnd bodyMode = iota // read to its end, then close
	closeAtOnce
	readSome // read up to 3 bytes, then close
)

// transcript reads up to four responses to req from src with read, and
// writes down everything a caller could see: each response's fields, what
// its body's reads and Close return, the error that ends the stream, and
// what is left on the reader.
func transcript(read func(*bufio.Reader, *http.Request) (*http.Response, error), src io.Reader, bufSize int, req *http.Request, mode bodyMode) string {
	var out strings.Builder
	br := bufio.NewReaderSize(src, bufSize)
	for range 4 {
		res, err := read(br, req)
		if err != nil {
			fmt.Fprintf(&out, "error %T %q\n", err, err)
			break
		}
		writeResponse(&out, res, req)
		writeBody(&out, res.Body, mode)
	}
	rest, err := io.ReadAll(br)
	fmt.Fprintf(&out, "left %s, %v\n", digest(rest), err)
	return out.String()
}

// writeResponse writes down every field of res but the body, whose type
// may differ: only whether it is http.NoBody counts.
func writeResponse(out io.Writer, res *http.Response, req *http.Request) {
	fields := *res
	fields.Body = nil
	fields.Request = nil
	fmt.Fprintf(out, "%#v\nrequest kept: %v, no body: %v\n", fields, res.Request == req, res.Body == http.NoBody)
}

func writeBody(out io.Writer, body io.ReadCloser, mode bodyMode) {
	var buf [3]byte
	switch mode {
	case readToEnd:
		b, err := io.ReadAll(body)
		fmt.Fprintf(out, "body %s, %T %v\n", digest(b), err, err)
		n, err := body.Read(buf[:])
		fmt.Fprintf(out, "read after the end: %d, %v\n", n, err)
	case readSome:
		n, err := body.Read(buf[:])
		fmt.Fprintf(out, "read %q, %v\n", buf[:n], err)
	}
	fmt.Fprintf(out, "close: %v\n", body.Close())
	n, err := body.Read(buf[:])
	fmt.Fprintf(out, "read after close: %d, %v\n", n, err)
}

// digest names bytes by length, start and hash.
func digest(b []byte) string {
	return fmt.Sprintf("%d bytes %.40q sha256 %.8x", len(b), b, sha256.Sum256(b))
}

// compareReads reads raw both ways, in every shape, mode and method, and
// reports the first difference.
func compareReads(t *testing.T, name, raw string, shapes []readShape) {
	t.Helper()
	for _, method := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(method, "http://backend/", nil)
		for _, shape := range shapes {
			for _, mode := range []bodyMode{readToEnd, closeAtOnce, readSome} {
				fast := transcript(readFinalResponse, shape.src(raw), shape.bufSize, req, mode)
				std := transcript(stdReadFinalResponse, shape.src(raw), shape.bufSize, req, mode)
				if fast != std {
					t.Errorf("%s (%s, %s, body mode %d):\nreadFinalResponse:\n%s\nnet/http:\n%s", name, method, shape.name, mode, fast, std)
					return
				}
			}
		}
	}
}

// readFinalResponse reads every stream as net/http's ReadResponse does:
// same responses, field for field, same bodies, errors and leftovers,
// however the stream arrives.
func TestReadFinalResponseReadsLikeNetHTTP(t *testing.T) {
	for _, c := range responseCases() {
		shapes := readShapes(c.raw)
		if strings.HasPrefix(c.name, "byte ") {
			shapes = shapes[:1] // the sweep is large: one shape is enough
		}
		compareReads(t, c.name, c.raw, shapes)
	}
}

// The differential test above passes as well if every head goes to
// net/http: parseResponse must take the common forms itself.
func TestParseResponseTakesTheCommonForms(t *testing.T) {
	takes := []string{
		typicalHead,
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\nContent-Length: 9\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
		"HTTP/1.1 200 Bien re\xc3\xa7u\r\nX-A:\t caf\xc3\xa9 \r\nContent-Length: 2\r\n\r\n",
	}
	leaves := []string{
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: \x01\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\n",
	}
	get, _ := http.NewRequest("GET", "http://backend/", nil)
	for _, head := range takes {
		if _, ok := parseResponse(head, bufio.NewReader(strings.NewReader("ok")), get); !ok {
			t.Errorf("parseResponse leaves %q to net/http", head)
		}
	}
	for _, head := range leaves {
		if _, ok := parseResponse(head, bufio.NewReader(strings.NewReader("ok")), get); ok {
			t.Errorf("parseResponse takes %q", head)
		}
	}
	head, _ := http.NewRequest("HEAD", "http://backend/", nil)
	if _, ok := parseResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", nil, head); !ok {
		t.Error("parseResponse leaves the answer to a HEAD without a length to net/http")
	}
}

// readFinalResponse parses the typical answer itself, with few
// allocations.
func TestReadFinalResponseAllocations(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://backend/", nil)
	src := strings.NewReader(typicalResponse)
	br := bufio.NewReaderSize(src, 16<<10)
	var buf [512]byte
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(typicalResponse)
		br.Reset(src)
		res, err := readFinalResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := res.Body.(*lengthBody); !ok {
			t.Fatalf("body %T, want the fast path's", res.Body)
		}
		for err == nil {
			_, err = res.Body.Read(buf[:])
		}
		res.Body.Close()
	})
	if allocs > 5 {
		t.Errorf("%.0f allocations per response, want at most 5", allocs)
	}
}

// FuzzReadFinalResponse compares readFinalResponse with net/http's
// ReadResponse on any stream, cut into reads of any size.
func FuzzReadFinalResponse(f *testing.F) {
	for _, c := range responseCases() {
		if !strings.HasPrefix(c.name, "byte ") && len(c.raw) < 4<<10 {
			f.Add([]byte(c.raw), false, uint16(0), uint8(0))
		}
	}
	f.Add([]byte(typicalResponse), true, uint16(7), uint8(1))
	f.Add([]byte(typicalResponse+typicalResponse), false, uint16(130), uint8(2))
	f.Fuzz(func(t *testing.T, raw []byte, head bool, chunk uint16, mode uint8) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		req, _ := http.NewRequest(method, "http://backend/", nil)
		size := int(chunk)
		if size == 0 {
			size = len(raw) + 1
		}
		bufSize := 16 << 10
		if mode&4 != 0 {
			bufSize = 64
		}
		m := bodyMode(mode % 3)
		fast := transcript(readFinalResponse, &chunkReader{data: raw, size: size}, bufSize, req, m)
		std := transcript(stdReadFinalResponse, &chunkReader{data: raw, size: size}, bufSize, req, m)
		if fast != std {
			t.Errorf("%s %q in reads of %d, buffer %d, body mode %d:\nreadFinalResponse:\n%s\nnet/http:\n%s", method, raw, size, bufSize, m, fast, std)
		}
	})
}

// BenchmarkReadResponse reads the typical answer of a backend, its body to
// the end, and closes it: with net/http's ReadResponse, and with
// readFinalResponse.
func BenchmarkReadResponse(b *testing.B) {
	for _, bm := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{
		{"net-http", stdReadFinalResponse},
		{"fast", readFinalResponse},
	} {
		b.Run(bm.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "http://backend/", nil)
			src := strings.NewReader(typicalResponse)
			br := bufio.NewReaderSize(src, 16<<10)
			var buf [512]byte
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(typicalResponse)
				br.Reset(src)
				res, err := bm.read(br, req)
				if err != nil {
					b.Fatal(err)
				}
				for err == nil {
					_, err = res.Body.Read(buf[:])
				}
				if err != io.EOF {
					b.Fatal(err)
				}
				res.Body.Close()
			}
		})
	}
}
