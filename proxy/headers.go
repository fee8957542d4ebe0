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

// outboundHeader returns the header to send to the backend: a copy of the
// client's without hop-by-hop and spoofable headers, with X-Forwarded-For
// (appended to), X-Forwarded-Proto, X-Forwarded-Host, X-Real-Ip and
// X-Request-Id set.
func outboundHeader(r *http.Request, requestID string) http.Header {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopHeaders(h)
	for _, k := range spoofable {
		delete(h, k)
	}
	if up := upgradeType(r.Header); up != "" {
		h["Connection"] = valueUpgrade
		h["Upgrade"] = []string{up}
	}
	if headerHasToken(r.Header["Te"], "trailers") {
		h["Te"] = valueTrailers
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h["X-Real-Ip"] = []string{ip}
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	if r.TLS != nil {
		h["X-Forwarded-Proto"] = valueHTTPS
	} else {
		h["X-Forwarded-Proto"] = valueHTTP
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	h["X-Request-Id"] = []string{requestID}
	return h
}

// copyResponseHeader copies the backend's response header to the client's
// without hop-by-hop headers.
func copyResponseHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
	removeHopHeaders(dst)
}
