package health

import (
	"math"
	"sync/atomic"
)

// State is the rise/fall state of one target. Its zero value is down with
// no history, so a new backend gets no traffic until it passes.
//
// Observe and SetUp are meant for one goroutine at a time (the target's
// probe loop and the Observer it calls); Up, Counts and Last may be called
// concurrently with them from any goroutine. The up bit and both counters
// live in one atomic word, so a reader never sees a torn combination such
// as "up with 3 consecutive failures after a fall of 3".
type State struct {
	word atomic.Uint64 // upBit | failures<<32 | passes
	last atomic.Pointer[Result]
}

// Layout of State.word. Only one counter is non-zero at a time: a pass
// resets the failures and a failure the passes. Counts saturate.
const (
	upBit     = 1 << 63
	countMask = math.MaxInt32
)

func packState(up bool, passes, failures uint64) uint64 {
	w := failures<<32 | passes
	if up {
		w |= upBit
	}
	return w
}

func unpackState(w uint64) (up bool, passes, failures uint64) {
	return w&upBit != 0, w & countMask, w >> 32 & countMask
}

// Observe applies one result: a pass adds to the consecutive passes and
// clears the failures, a failure the other way round. A target that is
// down comes up on its rise-th consecutive pass; one that is up goes down
// on its fall-th consecutive failure. changed reports such a transition.
// rise and fall below 1 count as 1.
func (s *State) Observe(ok bool, rise, fall int) (up, changed bool) {
	for {
		old := s.word.Load()
		wasUp, passes, failures := unpackState(old)
		up = wasUp
		if ok {
			passes, failures = min(passes+1, countMask), 0
			up = up || passes >= uint64(max(rise, 1))
		} else {
			passes, failures = 0, min(failures+1, countMask)
			up = up && failures < uint64(max(fall, 1))
		}
		if s.word.CompareAndSwap(old, packState(up, passes, failures)) {
			return up, up != wasUp
		}
	}
}

// Up reports whether the target is up.
func (s *State) Up() bool { return s.word.Load()&upBit != 0 }

// SetUp forces the target up without waiting for rise passes, as when a
// service has nothing else available and one pass must be enough. The
// consecutive failures are cleared, so it takes fall failures to go down
// again; the consecutive passes are kept, as they still describe the
// history.
func (s *State) SetUp() {
	for {
		old := s.word.Load()
		_, passes, _ := unpackState(old)
		if s.word.CompareAndSwap(old, packState(true, passes, 0)) {
			return
		}
	}
}

// Counts returns the consecutive passes and failures; at most one of them
// is non-zero.
func (s *State) Counts() (passes, failures int) {
	_, p, f := unpackState(s.word.Load())
	return int(p), int(f)
}

// Last returns the last probe result, or false before the first one.
func (s *State) Last() (Result, bool) {
	r := s.last.Load()
	if r == nil {
		return Result{}, false
	}
	return *r, true
}

// record stores r as the last result. The stored Result is never changed
// afterwards, so Last may copy it without a lock.
func (s *State) record(r Result) { s.last.Store(&r) }
