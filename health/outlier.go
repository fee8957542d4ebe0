package health

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Defaults of OutlierConfig, from Envoy's outlier detection.
const (
	DefaultConsecutive  = 5
	DefaultBaseEjection = 30 * time.Second
	DefaultMaxEjection  = 300 * time.Second
)

// OutlierConfig configures passive outlier detection. Zero fields mean the
// defaults above.
type OutlierConfig struct {
	// Consecutive is how many failures in a row signal an ejection. Zero
	// means DefaultConsecutive.
	Consecutive int
	// BaseEjection is how long the first ejection lasts; each further one
	// in a streak doubles it. Zero means DefaultBaseEjection.
	BaseEjection time.Duration
	// MaxEjection caps the ejection time. It is also how long a backend
	// must stay in (after its last ejection ended) for the doubling to
	// start again from BaseEjection. Zero means DefaultMaxEjection.
	MaxEjection time.Duration
}

// WithDefaults returns c with every zero (or negative) field set to its
// default.
func (c OutlierConfig) WithDefaults() OutlierConfig {
	if c.Consecutive <= 0 {
		c.Consecutive = DefaultConsecutive
	}
	if c.BaseEjection <= 0 {
		c.BaseEjection = DefaultBaseEjection
	}
	if c.MaxEjection <= 0 {
		c.MaxEjection = DefaultMaxEjection
	}
	return c
}

// Validate reports the first bad field of c, naming it.
func (c OutlierConfig) Validate() error {
	switch {
	case c.Consecutive < 0 || c.Consecutive > math.MaxInt32:
		return fmt.Errorf("outlier consecutive failures %d out of range: use 0 for the default (%d)", c.Consecutive, DefaultConsecutive)
	case c.BaseEjection < 0:
		return fmt.Errorf("outlier base ejection %s is negative: use 0 for the default (%s)", c.BaseEjection, DefaultBaseEjection)
	case c.MaxEjection < 0:
		return fmt.Errorf("outlier max ejection %s is negative: use 0 for the default (%s)", c.MaxEjection, DefaultMaxEjection)
	}
	if d := c.WithDefaults(); d.BaseEjection > d.MaxEjection {
		return fmt.Errorf("outlier base ejection %s is above the max ejection %s", d.BaseEjection, d.MaxEjection)
	}
	return nil
}

// Outlier is passive outlier detection for one backend: it counts
// consecutive failures of live requests (connection failures, 5xx) and
// says when the backend should be ejected, and for how long. Its zero
// value uses the default OutlierConfig.
//
// All methods are safe for concurrent use, lock-free and allocation-free:
// they are called on the request path.
//
// The protocol: Failure (or Trip) returns eject=true to exactly one
// caller when the count reaches the threshold; no further signal comes
// until that caller answers with Ejected (it took the backend out) or
// Declined (it could not, e.g. the backend is the last one available).
// Both reset the count, so detection starts again.
//
// Ejection time doubles with each ejection of a streak: BaseEjection ×
// 2^(n-1) for the n-th, capped at MaxEjection. The streak ends, and n
// starts again from 1, once the backend has stayed in for MaxEjection
// after its last ejection ended.
type Outlier struct {
	failures  atomic.Int64 // consecutive failures since the last success, ejection or decline
	ejections atomic.Int32 // n of the last ejection of the streak
	until     atomic.Int64 // unix nanoseconds when the last ejection ends

	// Configuration, set by Configure; zero means the default.
	consecutive atomic.Int64
	base, max   atomic.Int64 // nanoseconds
}

// Configure sets the thresholds. When they change, the consecutive count
// restarts from zero, so a lowered threshold cannot be skipped past. It
// is meant for configuration updates, not the request path; calling it
// with an unchanged config changes nothing.
func (o *Outlier) Configure(cfg OutlierConfig) {
	cfg = cfg.WithDefaults()
	changed := o.threshold() != int64(cfg.Consecutive)
	o.consecutive.Store(int64(cfg.Consecutive))
	o.base.Store(int64(cfg.BaseEjection))
	o.max.Store(int64(cfg.MaxEjection))
	if changed {
		o.failures.Store(0)
	}
}

// Config returns the configuration in use, defaults applied.
func (o *Outlier) Config() OutlierConfig {
	return OutlierConfig{
		Consecutive:  int(o.consecutive.Load()),
		BaseEjection: time.Duration(o.base.Load()),
		MaxEjection:  time.Duration(o.max.Load()),
	}.WithDefaults()
}

// Success records a request that counts as healthy: the consecutive
// failures start again from zero. It only writes when there is something
// to reset, so that the common case leaves the cache line shared.
func (o *Outlier) Success() {
	if o.failures.Load() != 0 {
		o.failures.Store(0)
	}
}

// Failure records one failed request. It returns eject=true, with how
// long to eject the backend for, to the one caller whose failure reaches
// the threshold; that caller must answer with Ejected or Declined.
func (o *Outlier) Failure(now time.Time) (eject bool, d time.Duration) {
	if o.failures.Add(1) != o.threshold() {
		return false, 0
	}
	return true, o.duration(now)
}

// Trip records a failure bad enough to eject at once, such as a timeout of
// a backend that hangs: it brings the count to the threshold, with the
// same exactly-once signal as Failure. It returns false while another
// caller holds the signal.
func (o *Outlier) Trip(now time.Time) (eject bool, d time.Duration) {
	c := o.threshold()
	for {
		n := o.failures.Load()
		if n >= c {
			return false, 0
		}
		if o.failures.CompareAndSwap(n, c) {
			return true, o.duration(now)
		}
	}
}

// Ejected records that the caller ejected the backend at now for d: the
// streak grows by one and the consecutive count starts again.
func (o *Outlier) Ejected(now time.Time, d time.Duration) {
	n := o.streak(now)
	if n < math.MaxInt32 {
		n++
	}
	o.ejections.Store(n)
	o.until.Store(now.Add(d).UnixNano())
	o.failures.Store(0)
}

// Declined records that the caller could not eject the backend (it is the
// last one available): the count starts again, so the next signal comes
// after that many more failures. The streak is unchanged.
func (o *Outlier) Declined() { o.failures.Store(0) }

// Failures returns the current count of consecutive failures.
func (o *Outlier) Failures() int { return int(o.failures.Load()) }

// Ejections returns how many ejections the current streak has had as of
// now: zero when there was none, or when the last one ended MaxEjection
// or longer before now.
func (o *Outlier) Ejections(now time.Time) int { return int(o.streak(now)) }

func (o *Outlier) threshold() int64 {
	if c := o.consecutive.Load(); c > 0 {
		return c
	}
	return DefaultConsecutive
}

// streak is the number of ejections in the current streak: zero once the
// backend has been back for MaxEjection.
func (o *Outlier) streak(now time.Time) int32 {
	n := o.ejections.Load()
	if n > 0 && now.UnixNano()-o.until.Load() >= int64(o.maxEjection()) {
		return 0
	}
	return n
}

// duration is how long the next ejection lasts: BaseEjection doubled once
// per ejection of the current streak, capped at MaxEjection.
func (o *Outlier) duration(now time.Time) time.Duration {
	return o.EjectionFrom(now, time.Duration(math.MaxInt64))
}

// EjectionFrom is how long the next ejection lasts when it starts from
// first instead of BaseEjection (the shorter of the two), doubled once per
// ejection of the current streak and capped at MaxEjection, as every
// ejection is: for a kind of failure that should keep a backend out for
// less.
func (o *Outlier) EjectionFrom(now time.Time, first time.Duration) time.Duration {
	base, maxD := time.Duration(o.base.Load()), o.maxEjection()
	if base <= 0 {
		base = DefaultBaseEjection
	}
	d := min(base, first, maxD)
	for range o.streak(now) {
		if d >= maxD/2 {
			return maxD
		}
		d *= 2
	}
	return d
}

func (o *Outlier) maxEjection() time.Duration {
	if m := o.max.Load(); m > 0 {
		return time.Duration(m)
	}
	return DefaultMaxEjection
}
