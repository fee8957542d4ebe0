package balancer

import (
	"net/http"
	"time"
)

// sampleTries is how many uniform draws a policy makes before it counts
// the eligible backends to draw among them exactly. Draws are O(1); the
// count is O(n) and only needed when most backends are down or tried.
const sampleTries = 4

// p2c is the power of two random choices.
type p2c struct {
	pool
}

// NewP2C returns a power-of-two-choices policy: it draws two distinct
// available, untried backends at random and picks the cheaper, where cost
// is (InFlight+1) × Latency / Weight. When either latency is unknown (zero)
// both are ignored and in-flight counts per weight decide. With one
// eligible backend it picks that one. Two random choices avoid both the
// herd that least-connections sends to a backend that just recovered and
// the O(n) scan. rnd nil means math/rand/v2; Pick is safe for concurrent
// use.
func NewP2C(backends []Backend, rnd func() uint64) Policy {
	return &p2c{pool: newPool(backends, rnd)}
}

// Pick implements Policy.
func (p *p2c) Pick(_ *http.Request, tried Tried) int {
	a := p.sample(tried, -1)
	if a < 0 {
		return -1
	}
	b := p.sample(tried, a)
	if b < 0 {
		return a
	}
	la, lb := p.backends[a].Latency(), p.backends[b].Latency()
	if la <= 0 || lb <= 0 {
		la, lb = 1, 1 // unknown: compare in-flight counts only
	}
	if p.cost(b, lb) < p.cost(a, la) {
		return b
	}
	return a
}

// sample returns a uniformly random eligible backend other than skip, or
// -1 when there is none.
func (p *p2c) sample(tried Tried, skip int) int {
	n := uint64(len(p.backends))
	if n == 0 {
		return -1
	}
	for range sampleTries {
		if i := int(p.below(n)); i != skip && p.eligible(i, tried) {
			return i
		}
	}
	m := p.countEligible(tried, skip)
	if m == 0 {
		return -1
	}
	return p.nthEligible(p.below(m), tried, skip)
}

// cost returns backend i's cost, (in flight + 1) × lat / weight.
func (p *p2c) cost(i int, lat time.Duration) float64 {
	return float64(p.inFlight(i)+1) * float64(lat) / float64(p.weights[i])
}
