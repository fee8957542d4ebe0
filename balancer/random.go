package balancer

import (
	"net/http"
	"slices"
)

// random picks a weighted random eligible backend.
type random struct {
	pool
	cumulative []uint64 // cumulative[i] is the sum of weights[0..i]
}

// NewRandom returns a weighted random policy: each available, untried
// backend is picked with probability weight / sum of eligible weights.
// A draw over all backends is retried a few times when it lands on an
// ineligible one (which keeps the distribution exact) before the eligible
// weights are summed and drawn from. rnd nil means math/rand/v2; Pick is
// safe for concurrent use.
func NewRandom(backends []Backend, rnd func() uint64) Policy {
	p := &random{pool: newPool(backends, rnd)}
	p.cumulative = make([]uint64, len(p.weights))
	var sum uint64
	for i, w := range p.weights {
		sum += w
		p.cumulative[i] = sum
	}
	return p
}

// Pick implements Policy.
func (p *random) Pick(_ *http.Request, tried Tried) int {
	if p.total == 0 {
		return -1
	}
	for range sampleTries {
		// The first backend whose cumulative weight exceeds the draw.
		i, _ := slices.BinarySearch(p.cumulative, p.below(p.total)+1)
		if p.eligible(i, tried) {
			return i
		}
	}
	return p.exact(tried)
}

// exact draws among the eligible backends only. If availability changes
// between its two passes it returns the last eligible backend it saw, or
// -1.
func (p *random) exact(tried Tried) int {
	var sum uint64
	for i := range p.backends {
		if p.eligible(i, tried) {
			sum += p.weights[i]
		}
	}
	if sum == 0 {
		return -1
	}
	x, last := p.below(sum), -1
	for i := range p.backends {
		if !p.eligible(i, tried) {
			continue
		}
		if x < p.weights[i] {
			return i
		}
		x -= p.weights[i]
		last = i
	}
	return last
}
