package proxy

import (
	"bufio"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzH1WritesTheRequestTheTransportWould holds the fast path's request
// writer to net/http's: for requests as a server of cutover's hands them
// to the proxy (http.ReadRequest, then the server's checks of Host and of
// field names and values; a few it would refuse get through, which can
// only raise false alarms) that the fast path takes, a backend must read
// what the fast path wrote as http.ReadRequest reads what the Transport
// would write: method, target, Host, protocol, length and the header
// fields (as a map: the case of names and the order of fields aside).
// A difference there is a header that reaches the backend other than
// the proxy means (smuggled, duplicated or lost). The seeds are the
// cases of TestH1WritesTheRequestTheTransportWould.
func FuzzH1WritesTheRequestTheTransportWould(f *testing.F) {
	for _, raw := range []string{
		"GET /x HTTP/1.1\r\nHost: app.test\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
		"GET /a%2Fb/c%20d?x=1&y=%20&z HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET /caf\xc3\xa9/a\"b{|}^`?q=\xc3\xa9 HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eA==\r\nTe: trailers, deflate\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nForwarded: for=1.2.3.4\r\nX-Real-Ip: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Request-Id: mine\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nAccept: a\r\nAccept: b\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-Host: a\r\nUpgrade-Insecure-Requests: 1\r\nConnection: Te, close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: a\r\nUser-Agent: b\r\n\r\n",
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil || !servedByCutover(r) {
			return
		}
		r.RemoteAddr = "192.0.2.7:50000"
		if !fastEligible(r) {
			return
		}
		fast, std, err := writeBoth(r, "10.0.0.1:8080")
		if err != nil {
			t.Fatalf("%v\nrequest: %q", err, raw)
		}
		fh, ferr := readHead(fast)
		sh, serr := readHead(std)
		switch {
		case (ferr == nil) != (serr == nil) || ferr != nil && ferr.Error() != serr.Error():
			t.Fatalf("a backend reads the requests differently (fast path: %v, net/http: %v)\nrequest: %q\nfast path wrote %q\nnet/http writes %q", ferr, serr, raw, fast, std)
		case ferr == nil && !reflect.DeepEqual(fh, sh):
			t.Fatalf("a backend reads the requests differently\nrequest: %q\nfast path wrote %q\nnet/http writes %q", raw, fast, std)
		}
	})
}

// servedByCutover reports whether a server of cutover's could hand r to
// the proxy: net/http's server answers 400 to an invalid Host and to
// invalid field names and values itself (cutover's own parses a subset
// of what net/http reads). A missing Host and a version other than 1.x,
// which it answers too, get through.
func servedByCutover(r *http.Request) bool {
	if !httpguts.ValidHostHeader(r.Host) {
		return false
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}
