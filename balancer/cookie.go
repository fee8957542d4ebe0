package balancer

import (
	"fmt"
	"net/http"
	"strings"
)

// cookie pins a client to the backend whose Key its cookie holds.
type cookie struct {
	pool
	name     string
	index    map[string]int // Key → backend index; read-only after build
	fallback *roundRobin
}

// NewCookie returns a sticky policy: when the request's cookie name holds
// the Key of an available, untried backend, that backend is picked;
// otherwise (no cookie, unknown key, backend down or tried, r nil) smooth
// round robin picks, and the proxy, seeing through Sticky that the cookie
// differs from the chosen backend's Key, sets it. Backends' keys must be
// non-empty and unique. rnd (nil means math/rand/v2) seeds only the
// fallback; Pick is safe for concurrent use.
func NewCookie(name string, backends []Backend, rnd func() uint64) (Policy, error) {
	if !validToken(name) {
		return nil, fmt.Errorf("balancer: cookie name %q is not an HTTP token", name)
	}
	if err := checkKeys(backends); err != nil {
		return nil, err
	}
	p := &cookie{pool: newPool(backends, rnd), name: name, fallback: newRoundRobin(backends, rnd)}
	p.index = make(map[string]int, len(backends))
	for i, b := range p.backends {
		p.index[b.Key()] = i
	}
	return p, nil
}

// CookieName implements Sticky.
func (p *cookie) CookieName() string { return p.name }

// Pick implements Policy.
func (p *cookie) Pick(r *http.Request, tried Tried) int {
	if v, ok := CookieValue(r, p.name); ok {
		if i, ok := p.index[v]; ok && p.eligible(i, tried) {
			return i
		}
	}
	return p.fallback.Pick(r, tried)
}

// CookieValue returns the value of r's first cookie called name, parsed as
// the Cookie policy parses it; false when there is none or r is nil. The
// proxy uses it after a Pick to compare the cookie with the backend's Key:
// unlike http.Request.Cookie it allocates nothing.
func CookieValue(r *http.Request, name string) (string, bool) {
	if r == nil {
		return "", false
	}
	return cookieValue(r.Header, name)
}

// cookieValue returns the value of the first cookie called name in the
// Cookie header lines of h. Unlike http.Request.Cookie it allocates
// nothing: it scans the lines in place. It parses as RFC 6265 section 5.4
// says leniently: pairs separated by ";", space and tab trimmed around
// names and values, one pair of double quotes removed from a value, pairs
// without "=" skipped. Names compare case-sensitively.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(pair, "=")
			if ok && trim(k) == name {
				return unquote(trim(v)), true
			}
		}
	}
	return "", false
}

// trim removes leading and trailing spaces and tabs.
func trim(s string) string { return strings.Trim(s, " \t") }

// unquote removes one pair of surrounding double quotes.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
