package proxy

import (
	"sync/atomic"
	"time"
)

// Retry budget: retries of requests that reached a backend may add at most
// budgetPercent to a service's attempts over the last budgetWindow, plus
// budgetMin, so that retries cannot multiply the load of a failing service.
// Retries of requests that never reached a backend (refused connections)
// cost the backends nothing and are not limited.
const (
	budgetPercent = 20
	budgetMin     = 10
	budgetWindow  = 10 // seconds, one bucket each
)

// retryBudget counts requests and retries in one-second buckets with
// atomics only. A bucket is reset by the first caller of a new second; a
// few counts racing with the reset may be lost, which only makes the
// budget a little more generous.
type retryBudget struct {
	buckets [budgetWindow]budgetBucket
}

type budgetBucket struct {
	second   atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

func (rb *retryBudget) bucket(now time.Time) *budgetBucket {
	sec := now.Unix()
	b := &rb.buckets[sec%budgetWindow]
	if old := b.second.Load(); old != sec && b.second.CompareAndSwap(old, sec) {
		b.requests.Store(0)
		b.retries.Store(0)
	}
	return b
}

// request counts a request of the service.
func (rb *retryBudget) request(now time.Time) { rb.bucket(now).requests.Add(1) }

// allow reports whether one more retry fits the budget, and counts it if
// so.
func (rb *retryBudget) allow(now time.Time) bool {
	sec := now.Unix()
	var requests, retries int64
	for i := range rb.buckets {
		b := &rb.buckets[i]
		if sec-b.second.Load() < budgetWindow {
			requests += b.requests.Load()
			retries += b.retries.Load()
		}
	}
	if retries >= budgetMin+requests*budgetPercent/100 {
		return false
	}
	rb.bucket(now).retries.Add(1)
	return true
}
