package front

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Running a case and comparing the answers: the transcript of one
// connection.

// transcript is what a client saw on one connection.
type transcript struct {
	responses []answer
	// closed says the server closed the connection before the client
	// stopped waiting.
	closed bool
	// err is what else stopped the reading: a response cut short or
	// malformed.
	err string
	// raw is every byte read, for the report.
	raw []byte
	// reset says the reading ended with a reset: the server closed with
	// bytes it had not read, and responses the client had not read yet
	// may be lost. diff does not compare it.
	reset bool
}

// answer is one response, as far as the comparison goes.
type answer struct {
	status  string
	proto   string
	header  http.Header // without Transfer-Encoding; Date's value replaced
	chunked bool
	body    string
	trailer http.Header
	err     string // from reading the body
}

// runExchange writes c on a fresh connection to addr and reads every
// response until the server closes the connection or c's wait passes
// without a response. The wait starts again after every response: a long
// pipeline on a loaded machine takes longer, not a wait of its own.
func runExchange(addr string, c strictCase, closeWrite bool) (transcript, error) {
	conn, err := net.DialTimeout("tcp", addr, quietWait)
	if err != nil {
		return transcript{}, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	wait := cmp.Or(c.wait, quietWait)
	if err := conn.SetDeadline(time.Now().Add(wait)); err != nil {
		return transcript{}, fmt.Errorf("set deadline: %w", err)
	}
	answered := make(chan struct{})
	var once sync.Once
	first := func() {
		once.Do(func() { close(answered) })
		conn.SetReadDeadline(time.Now().Add(wait))
	}
	var wg sync.WaitGroup
	wg.Go(func() { writeCase(conn.(*net.TCPConn), c, closeWrite, answered) })
	rec := &byteRecorder{r: conn}
	s := readResponses(rec, cmp.Or(c.method, http.MethodGet), first)
	first()
	conn.Close()
	wg.Wait()
	s.raw = rec.buf.Bytes()
	return s, nil
}

// writeCase writes c, its after part once answered is closed, and then
// half-closes if asked. Write errors are left out: a server may answer and
// close before it read everything (a head too large), and the responses
// tell.
func writeCase(conn *net.TCPConn, c strictCase, closeWrite bool, answered <-chan struct{}) {
	write := func(s string) {
		if !c.byteByByte {
			io.WriteString(conn, s)
			return
		}
		for i := range len(s) {
			if _, err := io.WriteString(conn, s[i:i+1]); err != nil {
				return
			}
		}
	}
	write(c.request)
	if c.after != "" {
		<-answered
		write(c.after)
	}
	if closeWrite {
		conn.CloseWrite()
	}
}

// readResponses reads responses to method, calling first after each one,
// until reading fails.
func readResponses(rec *byteRecorder, method string, first func()) transcript {
	var s transcript
	br := bufio.NewReader(rec)
	end := 0 // bytes of the complete responses
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			s.closed, s.err = readEnd(err, rec.buf.Len() > end)
			s.reset = errors.Is(err, syscall.ECONNRESET)
			return s
		}
		body, err := io.ReadAll(resp.Body)
		s.responses = append(s.responses, newAnswer(resp, body, err))
		first()
		if err != nil {
			s.closed, s.err = readEnd(err, true)
			s.reset = errors.Is(err, syscall.ECONNRESET)
			return s
		}
		end = rec.buf.Len() - br.Buffered()
	}
}

// readEnd tells from the error that stopped the reading whether the server
// closed the connection, and what else went wrong. partial says bytes of
// an incomplete response had arrived.
func readEnd(err error, partial bool) (closed bool, msg string) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		closed = false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		closed = true
	case errors.Is(err, syscall.ECONNRESET):
		// A server that closes with unread bytes in its buffer resets
		// the connection: for the client, that is a close too.
		closed = true
	default:
		return false, errText(err)
	}
	if partial {
		return closed, "a response cut short: " + errText(err)
	}
	return closed, ""
}

// errText is err without the addresses of the connection, which differ
// between the sides.
func errText(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "wait ended"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	if op, ok := errors.AsType[*net.OpError](err); ok {
		return op.Err.Error()
	}
	return err.Error()
}

func newAnswer(resp *http.Response, body []byte, err error) answer {
	h := resp.Header.Clone()
	if _, ok := h["Date"]; ok {
		h["Date"] = []string{"(present)"}
	}
	// Server may send chunked where net/http sends a Content-Length.
	delete(h, "Transfer-Encoding")
	a := answer{status: resp.Status, proto: resp.Proto, header: h, body: string(body), trailer: resp.Trailer,
		chunked: slices.Contains(resp.TransferEncoding, "chunked")}
	if err != nil {
		a.err = errText(err)
	}
	return a
}

// byteRecorder keeps every byte read through it.
type byteRecorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *byteRecorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

// diff lists how o differs from s: the number of responses, their status
// line, headers, body and trailers, and how the connection ended. A
// Content-Length on one side only is no difference if the other side is
// chunked (Server may send chunked where net/http counts), nor are
// Transfer-Encoding and the value of Date.
func (s transcript) diff(o transcript) []string {
	var d []string
	if s.closed != o.closed {
		d = append(d, fmt.Sprintf("server closed the connection: net/http %t, front %t", s.closed, o.closed))
	}
	if s.err != o.err {
		d = append(d, fmt.Sprintf("reading stopped on: net/http %q, front %q", s.err, o.err))
	}
	if len(s.responses) != len(o.responses) {
		return append(d, fmt.Sprintf("responses: net/http %d, front %d", len(s.responses), len(o.responses)))
	}
	for i, a := range s.responses {
		d = append(d, a.diff(o.responses[i], i+1)...)
	}
	return d
}

func (a answer) diff(b answer, n int) []string {
	var d []string
	add := func(what, x, y string) {
		if x != y {
			d = append(d, fmt.Sprintf("response %d %s: net/http %s, front %s", n, what, x, y))
		}
	}
	add("status", a.status, b.status)
	add("protocol", a.proto, b.proto)
	add("body error", a.err, b.err)
	for _, k := range allKeys(a.header, b.header) {
		x, inA := a.header[k]
		y, inB := b.header[k]
		if k == "Content-Length" && inA != inB && (a.chunked || b.chunked) {
			continue
		}
		add("header "+k, fmt.Sprintf("%q", x), fmt.Sprintf("%q", y))
	}
	for _, k := range allKeys(a.trailer, b.trailer) {
		add("trailer "+k, fmt.Sprintf("%q", a.trailer[k]), fmt.Sprintf("%q", b.trailer[k]))
	}
	if a.body != b.body {
		line, x, y := firstDifference(a.body, b.body)
		add(fmt.Sprintf("body, line %d", line), fmt.Sprintf("%q", x), fmt.Sprintf("%q", y))
	}
	return d
}

// allKeys returns the keys of both headers, sorted.
func allKeys(a, b http.Header) []string {
	keys := slices.Concat(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b)))
	slices.Sort(keys)
	return slices.Compact(keys)
}

// firstDifference returns the first line, counted from 1, where a and b
// differ, and that line of each.
func firstDifference(a, b string) (int, string, string) {
	la, lb := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	for i := 0; ; i++ {
		x, y := lineAt(la, i), lineAt(lb, i)
		if x != y || i >= len(la) {
			return i + 1, x, y
		}
	}
}

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

func (s transcript) summary() string {
	statuses := make([]string, len(s.responses))
	for i, a := range s.responses {
		statuses[i] = a.status
	}
	end := "kept the connection open"
	if s.closed {
		end = "closed the connection"
	}
	if s.err != "" {
		end += ", " + s.err
	}
	return fmt.Sprintf("%d responses [%s], %s", len(s.responses), strings.Join(statuses, "; "), end)
}

func (s transcript) full() string { return s.summary() + ":" + quotedLines(string(s.raw)) }

// quotedLines shows s as quoted lines, indented, clipped in the middle if
// long.
func quotedLines(s string) string {
	const keep = 1 << 10
	if len(s) > 3*keep {
		s = fmt.Sprintf("%s[… %d bytes …]%s", s[:2*keep], len(s)-3*keep, s[len(s)-keep:])
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			fmt.Fprintf(&b, "\n    %q", line)
		}
	}
	return b.String()
}
