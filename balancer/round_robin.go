package balancer

import (
	"math"
	"net/http"
	"sync/atomic"
)

// minScheduleLen is the schedule length up to which weights are used
// exactly; see scheduleLimit.
const minScheduleLen = 4096

// roundRobin is smooth weighted round robin made lock-free: the order of
// one whole cycle is computed when the policy is built, and an atomic
// counter walks it.
type roundRobin struct {
	pool
	schedule []int32 // backend indexes, one cycle
	next     atomic.Uint64
}

// NewRoundRobin returns a smooth weighted round-robin policy: with weights
// 5, 1, 1 it picks a a b a c a a, not a a a a a b c, so a heavy backend's
// share is spread over the cycle rather than sent in bursts.
//
// The cycle is computed once, here, after dividing the weights by their
// greatest common divisor. When the weights still sum to more than
// max(4096, 16×len(backends)), they are scaled down to about that sum
// (each rounded, and at least 1), so the schedule stays small: shares are
// then exact to within rounding. Building costs O(len(schedule) ×
// len(backends)).
//
// Pick walks the cycle with an atomic counter that starts at a random
// offset (rnd; nil means math/rand/v2), so that frequent rebuilds do not
// favour the first backend. An unavailable or tried backend is skipped and
// its turn consumed, so its share goes to the next turns rather than all
// to its neighbour in the cycle. Pick reads one backend per turn it skips,
// so at most one cycle when none is eligible. Pick is safe for concurrent
// use.
func NewRoundRobin(backends []Backend, rnd func() uint64) Policy {
	return newRoundRobin(backends, rnd)
}

func newRoundRobin(backends []Backend, rnd func() uint64) *roundRobin {
	p := &roundRobin{pool: newPool(backends, rnd)}
	p.schedule = smoothSchedule(scheduleWeights(p.weights))
	p.next.Store(p.rand())
	return p
}

// Pick implements Policy.
func (p *roundRobin) Pick(_ *http.Request, tried Tried) int {
	n := uint64(len(p.schedule))
	if n == 0 {
		return -1
	}
	pos := (p.next.Add(1) - 1) % n
	for k := uint64(0); k < n; k++ {
		if i := int(p.schedule[pos]); p.eligible(i, tried) {
			if k > 0 {
				p.next.Add(k) // consume the skipped turns
			}
			return i
		}
		if pos++; pos == n {
			pos = 0
		}
	}
	return -1
}

// scheduleLimit is the schedule length above which weights are scaled
// down, for n backends.
func scheduleLimit(n int) uint64 { return uint64(max(minScheduleLen, 16*n)) }

// scheduleWeights returns weights divided by their GCD and, when they still
// sum to more than scheduleLimit, scaled down to about that sum, each
// rounded and at least 1.
func scheduleWeights(weights []uint64) []uint64 {
	w := reduce(weights)
	var sum uint64
	for _, x := range w {
		sum += x
	}
	limit := scheduleLimit(len(w))
	if sum <= limit {
		return w
	}
	scale := float64(limit) / float64(sum)
	for i, x := range w {
		w[i] = max(1, uint64(math.Round(float64(x)*scale)))
	}
	return reduce(w)
}

// reduce returns a copy of weights divided by their greatest common
// divisor.
func reduce(weights []uint64) []uint64 {
	var g uint64
	for _, x := range weights {
		g = gcd(g, x)
	}
	w := make([]uint64, len(weights))
	for i, x := range weights {
		w[i] = x / g
	}
	return w
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// smoothSchedule returns one cycle of nginx's smooth weighted round robin:
// at every turn each backend's credit grows by its weight, the backend
// with the most credit (the first on ties) is picked and pays the sum of
// the weights. Backend i appears weights[i] times, spread as evenly as the
// weights allow.
func smoothSchedule(weights []uint64) []int32 {
	var total int64
	for _, w := range weights {
		total += int64(w)
	}
	credit := make([]int64, len(weights))
	schedule := make([]int32, 0, total)
	for range total {
		best := 0
		for i, w := range weights {
			credit[i] += int64(w)
			if credit[i] > credit[best] {
				best = i
			}
		}
		credit[best] -= total
		schedule = append(schedule, int32(best))
	}
	return schedule
}
