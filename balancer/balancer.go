// Package balancer holds the load-balancing policies. A Policy is built for
// a fixed list of backends (the backends of one service in one routing
// table) and picks among those that are available at the moment of the
// request. Policies read backends through the small Backend view defined
// here; the proxy's backends implement it. Health, in-flight counts and
// latency stay on the backends: a policy never copies them, so a new table
// (and so a new policy) never resets them.
//
// New builds a policy from a Config; NewRoundRobin, NewLeastConn, NewP2C,
// NewRandom, NewHashSource, NewHashHeader and NewCookie build one kind each.
// Weights are read once, when the policy is built.
//
// Every Pick is lock-free and allocation-free and safe for concurrent use:
// policy state is immutable after New except for atomic counters. The
// random source is injected (Config.Rand) so that tests are deterministic.
package balancer

import (
	"net/http"
	"time"
)

// Backend is what a policy reads of a backend. Implementations answer from
// atomics; every method is safe for concurrent use.
type Backend interface {
	// Available reports whether the backend may receive a new request now.
	Available() bool
	// InFlight is the number of requests the backend is serving now.
	InFlight() int64
	// Latency is a moving average of the backend's response time; zero
	// when unknown.
	Latency() time.Duration
	// Weight is the backend's relative share, 1 or more. Policies read it
	// once, when they are built; values below 1 count as 1 and values above
	// MaxWeight as MaxWeight.
	Weight() int
	// Key is a stable, opaque identifier of the backend: hash policies hash
	// it and the cookie policy stores it in the cookie. It must not reveal
	// the backend's address. Hash and cookie policies require keys to be
	// non-empty and unique.
	Key() string
}

// Tried is the set of backends, by index, that one request has already
// tried; a policy never picks them again. Its zero value is the empty set.
//
// Index i is recorded in bit i mod 64. Below 64 the set is exact; from 64 on
// an index shares its bit with others, so Has may report an untried backend
// as tried, never the reverse: a retry never lands on a backend it has
// already tried, at the cost of skipping a few untried ones in services of
// more than 64 backends.
type Tried uint64

// Add returns t with index i added. Negative indexes (Pick's -1) are
// ignored.
func (t Tried) Add(i int) Tried {
	if i < 0 {
		return t
	}
	return t | 1<<uint(i&63)
}

// Has reports whether index i is in t.
func (t Tried) Has(i int) bool { return i >= 0 && t&(1<<uint(i&63)) != 0 }

// Policy picks a backend for a request.
type Policy interface {
	// Pick returns the index of the chosen backend in the list the policy
	// was built for, or -1 when no available backend is left outside tried.
	// r may be nil (TCP connections); hash and cookie policies then fall
	// back to round robin. A TCP proxy that wants source hashing passes a
	// Request with only RemoteAddr set.
	Pick(r *http.Request, tried Tried) int
}

// Sticky is implemented by policies that pin clients with a cookie. After
// a Pick, the proxy compares the request's cookie with the backend's Key
// and sets the cookie when they differ.
type Sticky interface {
	CookieName() string
}
