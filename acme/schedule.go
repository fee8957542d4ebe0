package acme

import "time"

// renewAt returns when the renewal of a certificate valid from notBefore
// to notAfter starts: when the fraction window of its lifetime is left.
func renewAt(notBefore, notAfter time.Time, window float64) time.Time {
	life := notAfter.Sub(notBefore)
	return notAfter.Add(-time.Duration(float64(life) * window))
}

// retryDelay returns the wait after the n-th consecutive failed order
// (n >= 1): lo, doubled per further failure, at most hi.
func retryDelay(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
