package discovery

import (
	"fmt"
	"net/textproto"
	"strings"
)

// Policy names a load-balancing policy.
type Policy uint8

const (
	// RoundRobin is smooth weighted round robin. It is the zero value.
	RoundRobin Policy = iota
	// LeastConn picks the backend with the fewest requests in flight.
	LeastConn
	// P2C picks the better of two random backends by in-flight count and latency.
	P2C
	// Random picks a weighted random backend.
	Random
	// HashSource hashes the client IP address.
	HashSource
	// HashHeader hashes the value of the header named by Balance.Name.
	HashHeader
	// Cookie keeps a client on one backend with the cookie named by Balance.Name.
	Cookie
)

// Balance is a parsed "balance" key: a policy and, for hash:header and
// cookie, the header or cookie name.
type Balance struct {
	Policy Policy
	Name   string
}

const balanceHelp = "want roundrobin, leastconn, p2c, random, hash:source, hash:header:NAME or cookie:NAME"

// ParseBalance parses the value of a "balance" key.
func ParseBalance(s string) (Balance, error) {
	switch s = strings.TrimSpace(s); s {
	case "roundrobin", "":
		return Balance{Policy: RoundRobin}, nil
	case "leastconn":
		return Balance{Policy: LeastConn}, nil
	case "p2c":
		return Balance{Policy: P2C}, nil
	case "random":
		return Balance{Policy: Random}, nil
	case "hash:source":
		return Balance{Policy: HashSource}, nil
	}
	if name, ok := strings.CutPrefix(s, "hash:header:"); ok {
		if !validToken(name) {
			return Balance{}, fmt.Errorf("%q: header name %q is not a valid HTTP token", s, name)
		}
		return Balance{Policy: HashHeader, Name: textproto.CanonicalMIMEHeaderKey(name)}, nil
	}
	if name, ok := strings.CutPrefix(s, "cookie:"); ok {
		if !validToken(name) {
			return Balance{}, fmt.Errorf("%q: cookie name %q is not a valid HTTP token", s, name)
		}
		return Balance{Policy: Cookie, Name: name}, nil
	}
	return Balance{}, fmt.Errorf("unknown policy %q: %s", s, balanceHelp)
}

func (b Balance) String() string {
	switch b.Policy {
	case RoundRobin:
		return "roundrobin"
	case LeastConn:
		return "leastconn"
	case P2C:
		return "p2c"
	case Random:
		return "random"
	case HashSource:
		return "hash:source"
	case HashHeader:
		return "hash:header:" + b.Name
	case Cookie:
		return "cookie:" + b.Name
	}
	return "unknown"
}

// validToken reports whether s is a non-empty RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
