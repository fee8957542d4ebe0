package proxy

import (
	"strings"

	"github.com/cutoverproxy/cutover/discovery"
)

// Table is an immutable routing table: it maps a request's host and path
// to a Service. It is safe for concurrent use; the proxy replaces it as a
// whole, never changes it.
type Table struct {
	exact    map[string]*routeSet // lowercase host
	wildcard map[string]*routeSet // "example.com" for "*.example.com"
	any      *routeSet            // routes without host
	services []*Service           // sorted by name
	byName   map[string]*Service
	snapshot discovery.Snapshot
	dupNames bool // two services have one name: see Update
}

// routeSet holds the routes of one host, longest path first.
type routeSet struct {
	routes []pathRoute
}

type pathRoute struct {
	path string
	svc  *Service
}

// Services returns the table's services sorted by name. The slice must not
// be changed.
func (t *Table) Services() []*Service { return t.services }

// Service returns the named service, or nil.
func (t *Table) Service(name string) *Service { return t.byName[name] }

// Snapshot is the configuration the table was built from.
func (t *Table) Snapshot() discovery.Snapshot { return t.snapshot }

// maxHost bounds the host names Lookup lowercases on the stack; longer ones
// cannot be valid DNS names and match only the catch-all.
const maxHost = 253

// Lookup returns the service for a request's Host header and URL path, or
// nil when no route matches. The most specific host wins (exact, then the
// longest wildcard suffix, then the catch-all), and within a host the
// longest path prefix; a host whose paths do not match falls through to
// the less specific hosts. Lookup does not allocate.
func (t *Table) Lookup(host, path string) *Service {
	var buf [maxHost]byte
	h, ok := normalizeHost(host, &buf)
	if ok {
		if svc := t.exact[h].match(path); svc != nil {
			return svc
		}
		for i := strings.IndexByte(h, '.'); i >= 0; {
			if svc := t.wildcard[h[i+1:]].match(path); svc != nil {
				return svc
			}
			j := strings.IndexByte(h[i+1:], '.')
			if j < 0 {
				break
			}
			i += j + 1
		}
	}
	return t.any.match(path)
}

func (rs *routeSet) match(path string) *Service {
	if rs == nil {
		return nil
	}
	for _, r := range rs.routes {
		if pathHasPrefix(path, r.path) {
			return r.svc
		}
	}
	return nil
}

// pathHasPrefix reports whether prefix matches path at a segment boundary.
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// normalizeHost strips the port and a trailing dot and lowercases host into
// buf when it has upper-case letters. The result may alias host or buf.
func normalizeHost(host string, buf *[maxHost]byte) (string, bool) {
	host = stripPort(host)
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHost {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			n := copy(buf[:], host)
			for j := i; j < n; j++ {
				if c := buf[j]; c >= 'A' && c <= 'Z' {
					buf[j] = c + 'a' - 'A'
				}
			}
			return unsafeString(buf[:n]), true
		}
	}
	return host, true
}

// stripPort removes a ":port" suffix, keeping IPv6 literals' brackets.
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}
