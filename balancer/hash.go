package balancer

import (
	"fmt"
	"math"
	"net/http"
	"net/textproto"
	"strings"
)

// rendezvous is weighted rendezvous (highest random weight) hashing: every
// backend scores a request key by a hash of the key and the backend's Key,
// and the best eligible score wins. A score does not depend on the other
// backends, so a backend that leaves, goes down or was tried only moves
// the keys it held, each to its own second choice.
type rendezvous struct {
	pool
	keys     []uint64  // hash of each backend's Key
	inverse  []float64 // 1 / weight
	weighted bool      // weights differ
	fallback *roundRobin
}

func newRendezvous(backends []Backend, rnd func() uint64) (rendezvous, error) {
	if err := checkKeys(backends); err != nil {
		return rendezvous{}, err
	}
	h := rendezvous{pool: newPool(backends, rnd), fallback: newRoundRobin(backends, rnd)}
	h.keys = make([]uint64, len(backends))
	h.inverse = make([]float64, len(backends))
	for i, b := range h.backends {
		h.keys[i] = hashString(b.Key())
		h.inverse[i] = 1 / float64(h.weights[i])
		h.weighted = h.weighted || h.weights[i] != h.weights[0]
	}
	return h, nil
}

// pick returns the eligible backend with the best score for key, or -1.
func (h *rendezvous) pick(key string, tried Tried) int {
	k := hashString(key)
	if !h.weighted {
		return h.pickUniform(k, tried)
	}
	best, bestScore := -1, math.Inf(1)
	for i := range h.backends {
		// With u uniform in (0, 1), -ln(u)/weight is exponentially
		// distributed with rate weight: the lowest wins with probability
		// weight / sum of weights.
		score := -math.Log(unit(mix(k^h.keys[i]))) * h.inverse[i]
		if score < bestScore && h.eligible(i, tried) {
			best, bestScore = i, score
		}
	}
	return best
}

// pickUniform is pick for equal weights: the highest hash wins.
func (h *rendezvous) pickUniform(k uint64, tried Tried) int {
	best, bestScore := -1, uint64(0)
	for i := range h.backends {
		if score := mix(k ^ h.keys[i]); (best < 0 || score > bestScore) && h.eligible(i, tried) {
			best, bestScore = i, score
		}
	}
	return best
}

// hashSource hashes the client's IP address.
type hashSource struct {
	rendezvous
}

// NewHashSource returns a policy that keeps a client IP address on one
// backend by weighted rendezvous hashing of r.RemoteAddr without its port.
// X-Forwarded-For is not read: any client can forge it. Without a request
// or an address it falls back to smooth round robin. Backends' keys must be
// non-empty and unique. rnd (nil means math/rand/v2) seeds only the
// fallback; Pick is safe for concurrent use.
func NewHashSource(backends []Backend, rnd func() uint64) (Policy, error) {
	h, err := newRendezvous(backends, rnd)
	if err != nil {
		return nil, err
	}
	return &hashSource{h}, nil
}

// Pick implements Policy.
func (h *hashSource) Pick(r *http.Request, tried Tried) int {
	if r == nil || r.RemoteAddr == "" {
		return h.fallback.Pick(r, tried)
	}
	return h.pick(hostOnly(r.RemoteAddr), tried)
}

// hostOnly returns addr without its port: "1.2.3.4:80" and "[::1]:80" give
// "1.2.3.4" and "::1"; an address without a port is returned unbracketed.
func hostOnly(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr[:i], ':') < 0 {
		return addr[:i] // host:port
	}
	if i := strings.LastIndexByte(addr, ']'); len(addr) > 0 && addr[0] == '[' && i > 0 {
		return addr[1:i] // [ipv6]:port or [ipv6]
	}
	return addr // bare IPv6, or no port
}

// hashHeader hashes the value of a request header.
type hashHeader struct {
	rendezvous
	name string // canonical
}

// NewHashHeader returns a policy that keeps each value of header name on
// one backend by weighted rendezvous hashing. Only the first value counts.
// When the header is missing or empty, or r is nil, it falls back to smooth
// round robin. Backends' keys must be non-empty and unique. rnd (nil means
// math/rand/v2) seeds only the fallback; Pick is safe for concurrent use.
func NewHashHeader(name string, backends []Backend, rnd func() uint64) (Policy, error) {
	if !validToken(name) {
		return nil, fmt.Errorf("balancer: header name %q is not an HTTP token", name)
	}
	h, err := newRendezvous(backends, rnd)
	if err != nil {
		return nil, err
	}
	// Canonical now, so that Pick indexes r.Header without Header.Get's
	// canonicalisation (which allocates for a non-canonical name).
	return &hashHeader{h, textproto.CanonicalMIMEHeaderKey(name)}, nil
}

// Pick implements Policy.
func (h *hashHeader) Pick(r *http.Request, tried Tried) int {
	if r == nil {
		return h.fallback.Pick(r, tried)
	}
	v := r.Header[h.name]
	if len(v) == 0 || v[0] == "" {
		return h.fallback.Pick(r, tried)
	}
	return h.pick(v[0], tried)
}

// hashString is 64-bit FNV-1a, inline so that hashing allocates nothing.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is the SplitMix64 finaliser: a bijection that spreads every input
// bit over the output, so that key ^ backend scores look independent.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ z>>31
}

// unit maps x to a float64 in the open interval (0, 1).
func unit(x uint64) float64 { return (float64(x>>11) + 0.5) / (1 << 53) }
