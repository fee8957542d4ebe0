package front

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// The cases of TestStrictMatchesNetHTTP.

// requestHead joins lines into a request head: CRLF after each, then the
// empty line.
func requestHead(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// getRequest is a plain GET of target.
func getRequest(target string) string { return requestHead("GET "+target+" HTTP/1.1", hostLine) }

// getWith is a GET of / with more header lines.
func getWith(lines ...string) string {
	return requestHead(append([]string{"GET / HTTP/1.1", hostLine}, lines...)...)
}

// postRequest is a POST of / with more header lines, and body.
func postRequest(body string, lines ...string) string {
	return requestHead(append([]string{"POST / HTTP/1.1", hostLine}, lines...)...) + body
}

// allCases is every case of TestStrictMatchesNetHTTP, and the seeds of the
// fuzz targets.
func allCases() []strictCase {
	return slices.Concat(connectionCases(), bodyCases(), smugglingCases(), headerCases(),
		hostCases(), targetCases(), responseCases(), sweepCases())
}

func connectionCases() []strictCase {
	return []strictCase{
		{name: "get", request: getRequest("/")},
		{name: "get with a query", request: getRequest("/search?q=a%20b&x=1&x=2")},
		{name: "head", request: requestHead("HEAD / HTTP/1.1", hostLine), method: http.MethodHead},
		{name: "three pipelined gets", request: getRequest("/1") + getRequest("/2") + getRequest("/3")},
		{name: "pipelined, a body in the middle", request: getRequest("/1") + postRequest("hello", "Content-Length: 5") + getRequest("/3")},
		{name: "pipelined, a bad target in the middle", request: getRequest("/1") + getRequest("/%zz") + getRequest("/3")},
		{name: "pipelined, an empty line between", request: getRequest("/1") + "\r\n" + getRequest("/2")},
		{name: "pipelined, three bytes after", request: getRequest("/1") + "GET"},
		{name: "pipelined, four bytes after", request: getRequest("/1") + "GET "},
		{name: "pipelined, two bytes after, then nothing", request: getRequest("/1") + "GE", wait: timeoutWait},
		{name: "pipelined, an empty line after", request: getRequest("/1") + "\r\n"},
		{name: "after a post, an empty line between", request: requestHead("POST /1 HTTP/1.1", hostLine) + "\r\n" + getRequest("/2")},
		{name: "after a post, two empty lines between", request: requestHead("POST /1 HTTP/1.1", hostLine) + "\r\n\r\n" + getRequest("/2")},
		{name: "after a post, an empty line and two bytes", request: requestHead("POST /1 HTTP/1.1", hostLine) + "\r\nGE"},
		{name: "after a post, LF CR before", request: requestHead("POST /1 HTTP/1.1", hostLine) + "\n\r" + getRequest("/2")},
		{name: "connection close", request: getWith("Connection: close")},
		{name: "connection close, then a request", request: requestHead("GET /1 HTTP/1.1", hostLine, "Connection: close") + getRequest("/2")},
		{name: "connection close in capitals", request: getWith("Connection: CLOSE")},
		{name: "connection keep-alive, close", request: getWith("Connection: keep-alive, close")},
		{name: "connection keep-alive and connection close", request: getWith("Connection: keep-alive", "Connection: close")},
		{name: "http/1.0", request: requestHead("GET / HTTP/1.0", hostLine)},
		{name: "http/1.0 keep-alive", request: requestHead("GET / HTTP/1.0", hostLine, "Connection: keep-alive")},
		{name: "http/1.0 keep-alive, pipelined", request: requestHead("GET /1 HTTP/1.0", hostLine, "Connection: keep-alive") + requestHead("GET /2 HTTP/1.0", hostLine)},
		{name: "http/1.0 without host", request: requestHead("GET / HTTP/1.0")},
		{name: "idle connection times out", request: getRequest("/"), wait: timeoutWait},
		{name: "nothing sent", wait: timeoutWait},
		{name: "head cut short", request: "GET / HTTP/1.1\r\n" + hostLine + "\r\nAccept: te", wait: timeoutWait},
		{name: "request line cut short", request: "GET /ind", wait: timeoutWait},
		{name: "second head cut short", request: getRequest("/1") + "GET /2 HTTP/1.1\r\nHo", wait: timeoutWait},
		{name: "empty lines before the request", request: "\r\n\r\n" + getRequest("/")},
		{name: "one empty line before the request", request: "\r\n" + getRequest("/")},
		{name: "upgrade to websocket", request: getWith("Connection: Upgrade", "Upgrade: websocket",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")},
		{name: "upgrade to h2c", request: getWith("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
			"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA")},
		{name: "http/2 preface", request: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{name: "connect", request: requestHead("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443")},
		{name: "options *", request: requestHead("OPTIONS * HTTP/1.1", hostLine)},
		{name: "get *", request: requestHead("GET * HTTP/1.1", hostLine)},
		{name: "options /", request: requestHead("OPTIONS / HTTP/1.1", hostLine)},
	}
}

func bodyCases() []strictCase {
	const te = "Transfer-Encoding: chunked"
	return []strictCase{
		{name: "post, content-length 0", request: postRequest("", "Content-Length: 0")},
		{name: "post, 10 byte body", request: postRequest("0123456789", "Content-Length: 10")},
		{name: "post without a length", request: requestHead("POST / HTTP/1.1", hostLine)},
		{name: "get, content-length 0", request: getWith("Content-Length: 0")},
		{name: "get with a body", request: getWith("Content-Length: 5") + "hello"},
		{name: "body shorter than content-length", request: postRequest("hello", "Content-Length: 10")},
		{name: "body longer than content-length", request: postRequest("helloworld", "Content-Length: 5")},
		{name: "chunked body", request: postRequest("5\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body with trailers", request: postRequest("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n", te, "Trailer: X-Checksum")},
		{name: "chunked body with an extension", request: postRequest("5;name=value\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, bad chunk size", request: postRequest("zz\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, chunk size in 0x", request: postRequest("0x5\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, chunk longer than its size", request: postRequest("3\r\nhello\r\n0\r\n\r\n", te)},
		{name: "chunked body, bare LF", request: postRequest("5\nhello\n0\n\n", te)},
		{name: "chunked body cut short", request: postRequest("5\r\nhel", te)},
		{name: "expect 100-continue, body sent at once", request: postRequest("hello", "Content-Length: 5", "Expect: 100-continue")},
		{name: "expect 100-continue, body after the 100", request: postRequest("", "Content-Length: 5", "Expect: 100-continue"), after: "hello"},
		{name: "expect 100-continue, chunked body after the 100", request: postRequest("", te, "Expect: 100-continue"), after: "5\r\nhello\r\n0\r\n\r\n"},
		{name: "expect 100-continue without a body", request: getWith("Expect: 100-continue")},
		{name: "expect 100-continue on http/1.0", request: requestHead("POST / HTTP/1.0", hostLine, "Content-Length: 5", "Expect: 100-continue") + "hello"},
		{name: "unknown expectation", request: getWith("Expect: 200-ok")},
	}
}

func smugglingCases() []strictCase {
	const body = "5\r\nhello\r\n0\r\n\r\n"
	return []strictCase{
		{name: "content-length and chunked", request: postRequest("0\r\n\r\nGET /smuggled HTTP/1.1\r\n"+hostLine+"\r\n\r\n", "Content-Length: 5", "Transfer-Encoding: chunked")},
		{name: "chunked and content-length", request: postRequest("0\r\n\r\n", "Transfer-Encoding: chunked", "Content-Length: 5")},
		{name: "two different content-lengths", request: postRequest("hello!", "Content-Length: 5", "Content-Length: 6")},
		{name: "two equal content-lengths", request: postRequest("hello", "Content-Length: 5", "Content-Length: 5")},
		{name: "content-length list 5, 6", request: postRequest("hello!", "Content-Length: 5, 6")},
		{name: "content-length list 5, 5", request: postRequest("hello", "Content-Length: 5, 5")},
		{name: "content-length with a plus sign", request: postRequest("hello", "Content-Length: +5")},
		{name: "content-length with leading spaces", request: postRequest("hello", "Content-Length:     5")},
		{name: "content-length with trailing spaces", request: postRequest("hello", "Content-Length: 5   ")},
		{name: "content-length after a tab", request: postRequest("hello", "Content-Length:\t5")},
		{name: "negative content-length", request: postRequest("hello", "Content-Length: -1")},
		{name: "content-length in hex", request: postRequest("hello", "Content-Length: 0x5")},
		{name: "content-length with leading zeros", request: postRequest("hello", "Content-Length: 005")},
		{name: "huge content-length", request: postRequest("hello", "Content-Length: 99999999999999999999")},
		{name: "empty content-length", request: postRequest("hello", "Content-Length: ")},
		{name: "transfer-encoding gzip, chunked", request: postRequest(body, "Transfer-Encoding: gzip, chunked")},
		{name: "transfer-encoding chunked, gzip", request: postRequest(body, "Transfer-Encoding: chunked, gzip")},
		{name: "transfer-encoding xchunked", request: postRequest(body, "Transfer-Encoding: xchunked")},
		{name: "transfer-encoding chunked twice", request: postRequest(body, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")},
		{name: "transfer-encoding Chunked", request: postRequest(body, "Transfer-Encoding: Chunked")},
		{name: "transfer-encoding identity", request: postRequest(body, "Transfer-Encoding: identity")},
		{name: "transfer-encoding after a tab", request: postRequest(body, "Transfer-Encoding:\tchunked")},
		{name: "space before the colon of transfer-encoding", request: postRequest(body, "Transfer-Encoding : chunked")},
		{name: "space around transfer-encoding", request: postRequest(body, " Transfer-Encoding : chunked")},
		{name: "space before the colon of content-length", request: postRequest("hello", "Content-Length : 5")},
		{name: "transfer-encoding on http/1.0", request: requestHead("POST / HTTP/1.0", hostLine, "Transfer-Encoding: chunked") + body},
		{name: "transfer-encoding on a get", request: getWith("Transfer-Encoding: chunked") + "0\r\n\r\n"},
	}
}

func headerCases() []strictCase {
	return []strictCase{
		{name: "NUL in a header value", request: getWith("X-A: a\x00b")},
		{name: "bare CR in a header value", request: getWith("X-A: a\rb")},
		{name: "DEL in a header value", request: getWith("X-A: a\x7fb")},
		{name: "byte 0x80 in a header value", request: getWith("X-A: a\x80b")},
		{name: "UTF-8 in a header value", request: getWith("X-A: café")},
		{name: "tab in a header value", request: getWith("X-A: a\tb")},
		{name: "non-token byte in a header name", request: getWith("X(A): b")},
		{name: "space in a header name", request: getWith("X A: b")},
		{name: "empty header name", request: getWith(": b")},
		{name: "NUL in a header name", request: getWith("X\x00A: b")},
		{name: "byte 0x80 in a header name", request: getWith("X\x80A: b")},
		{name: "underscore in a header name", request: getWith("X_A: b")},
		{name: "header line without a colon", request: getWith("XA b")},
		{name: "obs-fold with a space", request: getWith("X-A: a", " b")},
		{name: "obs-fold with a tab", request: getWith("X-A: a", "\tb")},
		{name: "folded first header line", request: requestHead("GET / HTTP/1.1", " X-A: b", hostLine)},
		{name: "space before a colon", request: getWith("X-A : b")},
		{name: "repeated header", request: getWith("X-A: 1", "X-A: 2")},
		{name: "lowercase header name", request: getWith("x-custom-header: v")},
		{name: "empty header value", request: getWith("X-A:")},
		{name: "header value with spaces around", request: getWith("X-A:   b  ")},
		{name: "many headers", request: getWith(slices.Repeat([]string{"X-Many: v"}, 200)...)},
		{name: "bare LF line endings", request: "GET / HTTP/1.1\n" + hostLine + "\nX-A: b\n\n"},
		{name: "bare LF in one line", request: "GET / HTTP/1.1\r\n" + hostLine + "\nX-A: b\r\n\r\n"},
		{name: "bare LF after the request line", request: "GET / HTTP/1.1\n" + hostLine + "\r\n\r\n"},
		{name: "bare LF ending the head", request: "GET / HTTP/1.1\r\n" + hostLine + "\r\n\n"},
		{name: "bare CR line endings", request: "GET / HTTP/1.1\r" + hostLine + "\r\r"},
		// Both servers answer 431 and close: the longer wait only keeps a
		// slow run (CI under -race) from ending before net/http's answer.
		{name: "2 MiB head", request: getWith("X-Big: " + strings.Repeat("a", 2<<20)), wait: timeoutWait},
		{name: "10 KiB head", request: getWith("X-Big: " + strings.Repeat("a", 10<<10))},
		{name: "9 KiB request line", request: getRequest("/" + strings.Repeat("a", 9<<10))},
		// Server reads a head into a buffer of 8 KiB (headBufSize).
		{name: "head of 8191 bytes", request: headOfSize(8<<10 - 1)},
		{name: "head of 8192 bytes", request: headOfSize(8 << 10)},
		{name: "head of 8193 bytes", request: headOfSize(8<<10 + 1)},
		{name: "head of 8194 bytes", request: headOfSize(8<<10 + 2)},
		{name: "pipelined heads of 5000 bytes", request: headOfSize(5000) + headOfSize(5000) + getRequest("/3")},
		{name: "pipelined heads of 8192 bytes", request: headOfSize(8<<10) + headOfSize(8<<10)},
		{name: "300 pipelined gets", request: strings.Repeat(getRequest("/"), 300)},
		{name: "get written byte by byte", request: getRequest("/"), byteByByte: true},
		{name: "pipelined gets written byte by byte", request: getRequest("/1") + getRequest("/2"), byteByByte: true},
		{name: "post written byte by byte", request: postRequest("hello", "Content-Length: 5"), byteByByte: true},
		{name: "bare LF head, then a CRLF head", request: "GET /1 HTTP/1.1\n" + hostLine + "\n\n" + getRequest("/2")},
	}
}

// headOfSize is a GET whose head is n bytes long, padded with a header.
func headOfSize(n int) string {
	short := getWith("X-Pad: ")
	return getWith("X-Pad: " + strings.Repeat("a", n-len(short)))
}

func hostCases() []strictCase {
	return []strictCase{
		{name: "missing host", request: requestHead("GET / HTTP/1.1")},
		{name: "two host headers", request: getWith("Host: other.example")},
		{name: "two equal host headers", request: getWith(hostLine)},
		{name: "empty host", request: requestHead("GET / HTTP/1.1", "Host:")},
		{name: "host with a space", request: requestHead("GET / HTTP/1.1", "Host: a b")},
		{name: "host with an at sign", request: requestHead("GET / HTTP/1.1", "Host: x@y")},
		{name: "host with a port", request: requestHead("GET / HTTP/1.1", "Host: example.com:8080")},
		{name: "ipv6 host", request: requestHead("GET / HTTP/1.1", "Host: [::1]:8080")},
		{name: "host in capitals", request: requestHead("GET / HTTP/1.1", "Host: EXAMPLE.com")},
		{name: "host with a slash", request: requestHead("GET / HTTP/1.1", "Host: a/b")},
		{name: "host with a comma", request: requestHead("GET / HTTP/1.1", "Host: a,b")},
		{name: "host with a percent", request: requestHead("GET / HTTP/1.1", "Host: a%20b")},
		{name: "host with NUL", request: requestHead("GET / HTTP/1.1", "Host: a\x00b")},
		{name: "host in UTF-8", request: requestHead("GET / HTTP/1.1", "Host: bücher.example")},
		{name: "host with spaces around", request: requestHead("GET / HTTP/1.1", "Host:   example.com  ")},
		{name: "host header name in lowercase", request: requestHead("GET / HTTP/1.1", "host: example.com")},
	}
}

func targetCases() []strictCase {
	return []strictCase{
		{name: "absolute-form target", request: getRequest("http://example.com/p")},
		{name: "absolute-form target, another host", request: getRequest("http://other.example/p?q=1")},
		{name: "absolute-form https target", request: getRequest("https://example.com/p")},
		{name: "authority-form target on a get", request: getRequest("example.com:80")},
		{name: "target without a slash", request: getRequest("p")},
		{name: "empty target", request: requestHead("GET  HTTP/1.1", hostLine)},
		{name: "invalid method", request: requestHead("G(ET / HTTP/1.1", hostLine)},
		{name: "lowercase method", request: requestHead("get / HTTP/1.1", hostLine)},
		{name: "custom method", request: requestHead("PURGE / HTTP/1.1", hostLine)},
		{name: "delete", request: requestHead("DELETE /x HTTP/1.1", hostLine)},
		{name: "missing method", request: requestHead(" / HTTP/1.1", hostLine)},
		{name: "tab in the target", request: getRequest("/a\tb")},
		{name: "space in the target", request: getRequest("/a b")},
		{name: "two spaces after the method", request: requestHead("GET  / HTTP/1.1", hostLine)},
		{name: "space after the version", request: requestHead("GET / HTTP/1.1 ", hostLine)},
		{name: "fragment in the target", request: getRequest("/a#b")},
		{name: "UTF-8 in the target", request: getRequest("/café")},
		{name: "byte 0xff in the target", request: getRequest("/\xff")},
		{name: "NUL in the target", request: getRequest("/a\x00b")},
		{name: "bad percent-encoding", request: getRequest("/%zz")},
		{name: "cut percent-encoding", request: getRequest("/a%2")},
		{name: "encoded dot segments", request: getRequest("/%2e%2e/admin")},
		{name: "dot segments", request: getRequest("/../admin")},
		{name: "encoded slash", request: getRequest("/a%2Fb")},
		{name: "double slash", request: getRequest("//a")},
		{name: "bare percent in the query", request: getRequest("/?q=%")},
		{name: "64 KiB URL", request: getRequest("/" + strings.Repeat("a", 64<<10))},
		{name: "http/1.2", request: requestHead("GET / HTTP/1.2", hostLine)},
		{name: "http/2.0", request: requestHead("GET / HTTP/2.0", hostLine)},
		{name: "http/0.9", request: requestHead("GET / HTTP/0.9", hostLine)},
		{name: "http/1.10", request: requestHead("GET / HTTP/1.10", hostLine)},
		{name: "version in lowercase", request: requestHead("GET / http/1.1", hostLine)},
		{name: "missing version", request: requestHead("GET /", hostLine)},
	}
}

func responseCases() []strictCase {
	asking := func(how string) string { return getRequest("/?respond=" + how) }
	return []strictCase{
		{name: "response with a sniffed content type", request: asking("sniff")},
		{name: "response to head with a sniffed content type", request: requestHead("HEAD /?respond=sniff HTTP/1.1", hostLine), method: http.MethodHead},
		{name: "empty response", request: asking("empty")},
		{name: "204 response with a body written", request: asking("204")},
		{name: "304 response with a body written", request: asking("304")},
		{name: "204 response with a content-length", request: asking("204-length")},
		{name: "304 response with a content-length", request: asking("304-length")},
		{name: "empty response to head", request: requestHead("HEAD /?respond=empty HTTP/1.1", hostLine), method: http.MethodHead},
		{name: "big response to head", request: requestHead("HEAD /?respond=big HTTP/1.1", hostLine), method: http.MethodHead},
		{name: "response with the handler's content-length", request: asking("length")},
		{name: "response longer than its content-length", request: asking("short-length")},
		{name: "response shorter than its content-length", request: asking("long-length")},
		{name: "response with connection close", request: asking("close") + getRequest("/2")},
		{name: "flushed response", request: asking("flush")},
		{name: "256 KiB response", request: asking("big")},
		{name: "response with a trailer", request: asking("trailer")},
		{name: "early hints", request: asking("early-hints")},
		{name: "status written twice", request: asking("twice")},
		{name: "handler aborts", request: asking("abort") + getRequest("/2")},
		{name: "handler aborts after a flush", request: asking("abort-after-flush") + getRequest("/2")},
		{name: "handler hijacks", request: asking("hijack")},
		{name: "handler uses a response controller", request: asking("controller")},
		{name: "pipelined after a flushed response", request: asking("flush") + getRequest("/2") + asking("big")},
		// A half-closed client's close is read during these: the
		// request's context ends, yet the response goes out whole.
		{name: "slow response", request: asking("slow"), wait: timeoutWait},
		{name: "slow response with connection close", request: requestHead("GET /?respond=slow HTTP/1.1", hostLine, "Connection: close"), wait: timeoutWait},
		{name: "slow response, then a request", request: asking("slow") + getRequest("/2"), wait: timeoutWait},
	}
}

// sweepBytes are put, one by one, in each place a sweep case tries: the
// printable bytes that are not letters or digits, and the space, control
// and high bytes most likely to matter.
const sweepBytes = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\x00\t\n\v\f\r\x7f\x80\xff"

// sweepCases try each of sweepBytes in each place of a request where a
// parser must decide about it.
func sweepCases() []strictCase {
	places := []struct {
		name    string
		request func(c string) string
	}{
		{"byte in the path", func(c string) string { return getRequest("/a" + c + "b") }},
		{"byte in the query", func(c string) string { return getRequest("/?a" + c + "b") }},
		{"byte in the host", func(c string) string { return requestHead("GET / HTTP/1.1", "Host: a"+c+"b") }},
		{"byte in a header name", func(c string) string { return getWith("X-A" + c + "b: v") }},
		{"byte in a header value", func(c string) string { return getWith("X-A: a" + c + "b") }},
		{"byte in the method", func(c string) string { return requestHead("G"+c+"T / HTTP/1.1", hostLine) }},
		{"percent-encoded byte in the path", func(c string) string { return getRequest(fmt.Sprintf("/a%%%02Xb", c[0])) }},
		{"percent-encoded byte in lowercase hex", func(c string) string { return getRequest(fmt.Sprintf("/a%%%02xb", c[0])) }},
	}
	var cases []strictCase
	for _, p := range places {
		for _, c := range []byte(sweepBytes) {
			cases = append(cases, strictCase{name: fmt.Sprintf("%s, 0x%02x", p.name, c),
				request: p.request(string(c)), halfClosedOnly: true})
		}
	}
	return cases
}
