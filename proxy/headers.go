package proxy

import (
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// hopHeaders are meaningful only for one connection and are not forwarded
// (RFC 9110 section 7.6.1), in canonical form.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes the hop-by-hop headers of h, including those
// that its Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for token := range strings.SplitSeq(v, ",") {
			if token = textproto.TrimString(token); token != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(token))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// upgradeType returns the protocol a request or response asks to switch
// to, or "".
func upgradeType(h http.Header) string {
	if !headerHasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// headerHasToken reports whether a comma-separated header contains token,
// case-insensitively.
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

var (
	valueHTTP     = []string{"http"}
	valueHTTPS    = []string{"https"}
	valueTrailers = []string{"trailers"}
	valueUpgrade  = []string{"Upgrade"}
)

// spoofable are headers a client could send to pose as another client,
// scheme or host; cutover is the edge, so it drops them and sets its own
// X-Forwarded-For/-Proto/-Host and X-Real-Ip instead.
var spoofable = [...]string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Original-Forwarded-For"}

// headerSink receives the headers to send to a backend: a map for
// net/http's Transport, or the wire for the HTTP/1.1 fast path.
type headerSink interface {
	add(key string, values []string)
	add1(key, value string)
}

// setByProxy are the headers the proxy writes itself, not copied from the
// client's. Host is written by the request writers from Request.Host (an
// HTTP/2 client may also send a host field).
var setByProxy = [...]string{"Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "X-Request-Id"}

// eachOutbound gives sink the headers to send to the backend: the
// client's without hop-by-hop headers (also those its Connection header
// names) and spoofable ones, then the X-Forwarded-* headers (the client's
// address appended to X-Forwarded-For), X-Real-Ip and X-Request-Id. It is
// the one definition of what reaches a backend.
func eachOutbound(r *http.Request, requestID string, sink headerSink) {
	named := r.Header["Connection"]
	for k, v := range r.Header {
		switch {
		case dropped(k, named):
		case k == "User-Agent":
			// As net/http's Transport writes it: the first value only,
			// and none when that is empty.
			if len(v) > 0 && v[0] != "" {
				sink.add(k, v[:1])
			}
		default:
			sink.add(k, v)
		}
	}
	if up := upgradeType(r.Header); up != "" {
		sink.add("Connection", valueUpgrade)
		sink.add1("Upgrade", up)
	}
	if headerHasToken(r.Header["Te"], "trailers") {
		sink.add("Te", valueTrailers)
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sink.add1("X-Real-Ip", ip)
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		sink.add1("X-Forwarded-For", ip)
	}
	if r.TLS != nil {
		sink.add("X-Forwarded-Proto", valueHTTPS)
	} else {
		sink.add("X-Forwarded-Proto", valueHTTP)
	}
	sink.add1("X-Forwarded-Host", r.Host)
	sink.add1("X-Request-Id", requestID)
}

// dropped reports whether the client's header k stays with the proxy.
// Pseudo-header fields that net/http's HTTP/2 server leaves in the header
// (":protocol" of an extended CONNECT) are not HTTP/1 headers.
func dropped(k string, connection []string) bool {
	if k != "" && k[0] == ':' {
		return true
	}
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	for _, h := range spoofable {
		if k == h {
			return true
		}
	}
	for _, h := range setByProxy {
		if k == h {
			return true
		}
	}
	return len(connection) > 0 && headerHasToken(connection, k)
}

// headerMap collects the outbound headers for net/http's Transport. The
// values share the client's slices, which neither side changes.
type headerMap http.Header

func (h headerMap) add(k string, v []string) { h[k] = v }
func (h headerMap) add1(k, v string)         { h[k] = []string{v} }

// outboundHeader returns the header to send to the backend through
// net/http's Transport.
func outboundHeader(r *http.Request, requestID string) http.Header {
	h := make(http.Header, len(r.Header)+6)
	eachOutbound(r, requestID, headerMap(h))
	if _, ok := h["User-Agent"]; !ok {
		// Like the fast path, do not make up a User-Agent.
		h["User-Agent"] = valueEmpty
	}
	return h
}

var valueEmpty = []string{""}

// copyResponseHeader copies the backend's response header to the client's
// without hop-by-hop headers.
func copyResponseHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
	removeHopHeaders(dst)
}
