package front

import (
	"iter"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/cutoverproxy/cutover/internal/httpsyntax"
	"golang.org/x/net/http/httpguts"
)

// request is what parse takes from a head.
type request struct {
	method, target, host string
	url                  *url.URL
	header               http.Header
	close                bool // Connection: close
	preface              bool // the HTTP/2 preface, read as a request
}

// parse parses a request head (request line and header lines, each ending
// in CRLF, then the empty line) that Server takes on, or reports false:
// then net/http gets the request. What it takes, net/http would read the
// same way (Request.Host from the Host header, which leaves the header
// map; canonical keys); what it refuses is any request that has a body or
// asks for more than a response (Expect, Upgrade, the HTTP/2 preface),
// that net/http reads in a way of its own (HTTP/1.0, Pragma, a target not
// in origin form) or refuses, and every byte or form it does not expect:
// those go to net/http, which answers them as it always does. The URL is
// read into u, and the header's single values are stored in values when it
// has room for them (the caller allocates both with the request); a target
// that needs decoding gets a URL of its own, and values beyond those an
// array of their own.
func parse(head string, u *url.URL, values []string) (request, bool) {
	line, rest, _ := strings.Cut(head, "\r\n")
	var req request
	var ok bool
	if req.method, req.target, ok = requestLine(line); !ok {
		return req, false
	}
	if !plainURL(req.target, u) {
		var err error
		if u, err = url.ParseRequestURI(req.target); err != nil {
			return req, false
		}
	}
	req.url = u
	n := max(strings.Count(rest, "\r\n")-1, 0) // the empty line holds no field
	req.header = make(http.Header, n)
	if len(values) < n {
		values = make([]string, n) // one backing array for single values, as textproto does
	}
	hosts := 0
	for {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			break
		}
		key, value, ok := headerLine(line)
		if !ok {
			return req, false
		}
		switch key {
		case "Host":
			req.host = value
			hosts++
			continue
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Pragma", "Http2-Settings":
			return req, false
		case "Connection":
			req.close = req.close || hasToken(value, "close")
		}
		if vs := req.header[key]; vs != nil {
			req.header[key] = append(vs, value)
			continue
		}
		values[0] = value
		req.header[key] = values[:1:1]
		values = values[1:]
	}
	return req, hosts == 1 && httpguts.ValidHostHeader(req.host)
}

// requestLine splits "METHOD SP /target SP HTTP/1.1": a method of
// upper-case letters (not CONNECT or PRI), a target in origin form of
// visible ASCII without a fragment.
func requestLine(line string) (method, target string, ok bool) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || len(method) == 0 || len(method) > 16 ||
		method == http.MethodConnect || method == "PRI" {
		return "", "", false
	}
	for i := 0; i < len(method); i++ {
		if c := method[i]; c < 'A' || c > 'Z' {
			return "", "", false
		}
	}
	if len(target) == 0 || target[0] != '/' {
		return "", "", false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return "", "", false
		}
	}
	return method, target, true
}

// plainURL sets u to what url.ParseRequestURI reads from target, a target
// that requestLine took, when its path has nothing to decode: letters,
// digits and -._~$&+,/:;=@ only, which url.URL's Path holds as they are
// (RawPath empty). It reports false for any other path; the query is taken
// as it is, as url does.
func plainURL(target string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPath[path[i]] {
			return false
		}
	}
	// url sets ForceQuery for a target whose one "?" is its last byte.
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPath holds the bytes that url.URL keeps as they are in a path.
var plainPath = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~$&+,/:;=@", byte(c)) >= 0
	}
	return t
}()

// headerLine splits "Name: value" with a token name and a value of
// visible ASCII, spaces and tabs, trimmed of the spaces and tabs around
// it.
func headerLine(line string) (key, value string, ok bool) {
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		return "", "", false
	}
	name := line[:i]
	for j := 0; j < len(name); j++ {
		if !httpguts.IsTokenRune(rune(name[j])) {
			return "", "", false
		}
	}
	value = httpsyntax.TrimOWS(line[i+1:])
	for j := 0; j < len(value); j++ {
		if c := value[j]; c < ' ' && c != '\t' || c >= 0x7f {
			return "", "", false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name), value, true
}

// hasToken reports whether the comma-separated list v has token, in any
// case.
func hasToken(v, token string) bool {
	for t := range listElems(v) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}

// listElems yields the elements of comma-separated lists, trimmed of
// spaces and tabs; empty ones are left out.
func listElems(lists ...string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, list := range lists {
			for t := range strings.SplitSeq(list, ",") {
				if t = httpsyntax.TrimOWS(t); t != "" && !yield(t) {
					return
				}
			}
		}
	}
}
