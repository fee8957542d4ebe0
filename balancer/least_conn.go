package balancer

import (
	"net/http"
	"sync/atomic"
)

// leastConn picks the eligible backend with the fewest requests in flight
// per unit of weight.
type leastConn struct {
	pool
	next atomic.Uint64 // rotates among ties
}

// NewLeastConn returns a least-connections policy: it picks the available,
// untried backend with the lowest InFlight/Weight (compared exactly, by
// cross-multiplication). Ties, common when traffic is light and every
// count is zero, are broken by a weighted rotation driven by an atomic
// counter, so equal backends share the load and a backend of weight 2 gets
// twice the turns of one of weight 1. The counter starts at a random offset
// (rnd; nil means math/rand/v2). Pick reads every backend once, or twice on
// a tie, and is safe for concurrent use.
func NewLeastConn(backends []Backend, rnd func() uint64) Policy {
	p := &leastConn{pool: newPool(backends, rnd)}
	p.next.Store(p.rand())
	return p
}

// Pick implements Policy.
func (p *leastConn) Pick(_ *http.Request, tried Tried) int {
	best, load := -1, uint64(0)
	var tieWeight uint64 // sum of the weights of the backends tied with best
	ties := 0
	for i := range p.backends {
		if !p.eligible(i, tried) {
			continue
		}
		n := p.inFlight(i)
		switch {
		case best < 0 || n*p.weights[best] < load*p.weights[i]:
			best, load, ties, tieWeight = i, n, 1, p.weights[i]
		case n*p.weights[best] == load*p.weights[i]:
			ties++
			tieWeight += p.weights[i]
		}
	}
	if ties < 2 {
		return best
	}
	return p.rotate(tried, best, load, tieWeight)
}

// rotate picks among the backends tied with best (load in flight) by a
// weighted rotation. If the counts changed since they were compared and
// the turn finds no tie, best is kept.
func (p *leastConn) rotate(tried Tried, best int, load, tieWeight uint64) int {
	turn := p.next.Add(1) % tieWeight
	for i := best; i < len(p.backends); i++ {
		if !p.eligible(i, tried) || p.inFlight(i)*p.weights[best] != load*p.weights[i] {
			continue
		}
		if turn < p.weights[i] {
			return i
		}
		turn -= p.weights[i]
	}
	return best
}
