package balancer

import (
	"math/bits"
	"math/rand/v2"
	"slices"
)

// maxInFlight bounds the in-flight counts that policies compare, so that
// count × weight stays exact in 64 bits.
const maxInFlight = 1 << 40

// pool is what every policy shares: the backends it was built for, their
// weights as read at build time, and the random source. It is immutable
// and safe for concurrent use.
type pool struct {
	backends []Backend
	weights  []uint64 // each in [1, MaxWeight]
	total    uint64   // sum of weights
	rand     func() uint64
}

// newPool copies backends and reads their weights. A nil rnd means
// math/rand/v2's lock-free Uint64.
func newPool(backends []Backend, rnd func() uint64) pool {
	if rnd == nil {
		rnd = rand.Uint64
	}
	p := pool{backends: slices.Clone(backends), weights: make([]uint64, len(backends)), rand: rnd}
	for i, b := range p.backends {
		p.weights[i] = clampWeight(b.Weight())
		p.total += p.weights[i]
	}
	return p
}

// clampWeight maps a Backend's Weight into [1, MaxWeight].
func clampWeight(w int) uint64 { return uint64(min(max(w, 1), MaxWeight)) }

// eligible reports whether backend i may be picked for a request that
// already tried the backends in tried.
func (p *pool) eligible(i int, tried Tried) bool {
	return !tried.Has(i) && p.backends[i].Available()
}

// inFlight returns backend i's in-flight count, clamped into
// [0, maxInFlight].
func (p *pool) inFlight(i int) uint64 {
	return uint64(min(max(p.backends[i].InFlight(), 0), maxInFlight))
}

// below returns a uniformly distributed number in [0, n), n > 0, by
// multiplying and keeping the high word (no division; bias below n/2^64).
func (p *pool) below(n uint64) uint64 {
	hi, _ := bits.Mul64(p.rand(), n)
	return hi
}

// countEligible returns how many backends other than skip are eligible.
func (p *pool) countEligible(tried Tried, skip int) uint64 {
	var n uint64
	for i := range p.backends {
		if i != skip && p.eligible(i, tried) {
			n++
		}
	}
	return n
}

// nthEligible returns the index of the k-th (from 0) eligible backend other
// than skip. When availability changed since they were counted and fewer
// are left, it returns the last eligible one it saw, or -1.
func (p *pool) nthEligible(k uint64, tried Tried, skip int) int {
	last := -1
	for i := range p.backends {
		if i == skip || !p.eligible(i, tried) {
			continue
		}
		if k == 0 {
			return i
		}
		k--
		last = i
	}
	return last
}
