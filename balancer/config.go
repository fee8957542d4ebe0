package balancer

import (
	"fmt"
	"strings"
)

// Kind names a policy. The proxy maps the discovery package's policy names
// to it. Its zero value is RoundRobin.
type Kind uint8

const (
	// RoundRobin is smooth weighted round robin.
	RoundRobin Kind = iota
	// LeastConn picks the backend with the fewest requests in flight per
	// unit of weight.
	LeastConn
	// P2C picks the cheaper of two random backends, by in-flight count and
	// latency per unit of weight.
	P2C
	// Random picks a weighted random backend.
	Random
	// HashSource keeps a client IP address on one backend.
	HashSource
	// HashHeader keeps a value of the header named by Config.Name on one
	// backend.
	HashHeader
	// Cookie keeps a client on the backend named by the cookie
	// Config.Name.
	Cookie
)

// String returns the name that the cutover.balance label uses for k,
// without the header or cookie name.
func (k Kind) String() string {
	switch k {
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
		return "hash:header"
	case Cookie:
		return "cookie"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MaxWeight is the largest weight a policy honours; a larger Weight counts
// as MaxWeight. The bound keeps weight arithmetic exact in 64 bits.
const MaxWeight = 1 << 20

// Config says which policy New builds.
type Config struct {
	// Kind is the policy. Zero means RoundRobin.
	Kind Kind
	// Name is the header that HashHeader hashes or the cookie that Cookie
	// reads. Required for those two kinds, ignored by the others.
	Name string
	// Rand returns uniformly distributed 64-bit numbers. Policies call it
	// from many goroutines at once, so it must be safe for concurrent use
	// and should not take a lock. Nil means math/rand/v2's Uint64, which
	// is lock-free (per-thread runtime state). Tests inject a
	// deterministic source.
	Rand func() uint64
}

// Validate reports what is wrong with c, naming the field.
func (c Config) Validate() error {
	switch c.Kind {
	case RoundRobin, LeastConn, P2C, Random, HashSource:
		return nil
	case HashHeader, Cookie:
		if !validToken(c.Name) {
			return fmt.Errorf("balancer: Config.Name %q: %s needs a header or cookie name that is a non-empty HTTP token", c.Name, c.Kind)
		}
		return nil
	}
	return fmt.Errorf("balancer: Config.Kind %d is unknown: want one of RoundRobin … Cookie", uint8(c.Kind))
}

// New returns the policy cfg names, built for backends. The slice is
// copied; the backends' weights are read now, their state at every Pick.
func New(cfg Config, backends []Backend) (Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case LeastConn:
		return NewLeastConn(backends, cfg.Rand), nil
	case P2C:
		return NewP2C(backends, cfg.Rand), nil
	case Random:
		return NewRandom(backends, cfg.Rand), nil
	case HashSource:
		return NewHashSource(backends, cfg.Rand)
	case HashHeader:
		return NewHashHeader(cfg.Name, backends, cfg.Rand)
	case Cookie:
		return NewCookie(cfg.Name, backends, cfg.Rand)
	}
	return NewRoundRobin(backends, cfg.Rand), nil
}

// checkKeys reports an empty or duplicate Key: hash and cookie policies
// tell backends apart by their keys.
func checkKeys(backends []Backend) error {
	seen := make(map[string]int, len(backends))
	for i, b := range backends {
		k := b.Key()
		if k == "" {
			return fmt.Errorf("balancer: backend %d has an empty Key", i)
		}
		if j, dup := seen[k]; dup {
			return fmt.Errorf("balancer: backends %d and %d share Key %q", j, i, k)
		}
		seen[k] = i
	}
	return nil
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
