// Package balancer holds the load-balancing policies. A Policy is built for
// a fixed list of backends (the backends of one service in one routing
// table) and picks among those that are available at the moment of the
// request. Policies read backends through the small Backend view defined
// here; the proxy's backends implement it.
//
// Every Pick is lock-free and allocation-free and safe for concurrent use:
// policy state is immutable after New except for atomic counters.
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
	// Weight is the backend's relative share, 1 or more.
	Weight() int
	// Key is a stable, opaque identifier of the backend: hash policies hash
	// it and the cookie policy stores it in the cookie. It must not reveal
	// the backend's address.
	Key() string
}

// Tried is the set of backends, by index, that one request has already
// tried; a policy never picks them again. Indexes from 64 on are not
// tracked.
type Tried uint64

// Add returns t with index i added.
func (t Tried) Add(i int) Tried {
	if i < 0 || i >= 64 {
		return t
	}
	return t | 1<<uint(i)
}

// Has reports whether index i is in t.
func (t Tried) Has(i int) bool { return i >= 0 && i < 64 && t&(1<<uint(i)) != 0 }

// Policy picks a backend for a request.
type Policy interface {
	// Pick returns the index of the chosen backend in the list the policy
	// was built for, or -1 when no available backend is left outside tried.
	// r may be nil (TCP connections); hash policies then fall back to their
	// base policy.
	Pick(r *http.Request, tried Tried) int
}

// Sticky is implemented by policies that pin clients with a cookie. After
// a Pick, the proxy compares the request's cookie with the backend's Key
// and sets the cookie when they differ.
type Sticky interface {
	CookieName() string
}
