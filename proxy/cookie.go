package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// cookieValue returns the value of the named cookie without allocating,
// or "".
func cookieValue(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(textproto.TrimString(part), "=")
			if ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// stickyCookie is the Set-Cookie value that pins a client to a backend.
func stickyCookie(name, key string) string {
	return name + "=" + key + "; Path=/; HttpOnly; SameSite=Lax"
}
