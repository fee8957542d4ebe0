// Package health decides whether backends may receive traffic.
//
// Active checks: a Monitor runs one probe loop per target (HTTP GET of a
// path, or a TCP connect), the first probe at once and the next ones every
// interval with jitter, while its Run runs; Set replaces the targets and
// restarts only the loops whose target changed. A State applies rise/fall
// thresholds to the results: a target comes up after Rise consecutive
// passes and goes down after Fall consecutive failures, so a single
// flapping probe does not flip it. Results and transitions are reported
// to the target's Observer.
//
// Passive checks: an Outlier counts consecutive failures of live traffic
// and says, exactly once per streak of failures, when a backend should be
// ejected and for how long (doubling on repeat, up to a maximum); the
// caller decides whether it may eject, and says so. It is lock-free and
// allocation-free, for the request path.
//
// The package imports nothing of the project: the proxy maps its
// configuration to Config and implements Observer on its backends, which
// own the State so that it survives every table swap.
package health

import (
	"fmt"
	"strings"
	"time"
)

// Mode is the kind of active probe.
type Mode uint8

const (
	// Off runs no active probe: the caller treats the target as up. The
	// Monitor runs no loop for it and leaves its State alone. It is the
	// zero value.
	Off Mode = iota
	// HTTP probes with a GET of Config.Path.
	HTTP
	// TCP probes by opening a connection.
	TCP
)

// String returns "off", "http" or "tcp".
func (m Mode) String() string {
	switch m {
	case Off:
		return "off"
	case HTTP:
		return "http"
	case TCP:
		return "tcp"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Defaults of Config, from HAProxy's "check inter 2000 rise 2 fall 3".
const (
	DefaultInterval  = 2 * time.Second
	DefaultTimeout   = time.Second
	DefaultRise      = 2
	DefaultFall      = 3
	DefaultStatusMin = 200
	DefaultStatusMax = 399
)

// Config configures the active probe of one target. Zero fields mean the
// defaults above. Config is comparable: the Monitor compares it, with
// defaults applied, to decide whether a target's probe loop must restart.
type Config struct {
	Mode Mode
	// Path of the HTTP probe, with an optional query. Empty means "/".
	Path string
	// Host header of the HTTP probe. Empty means the probed address.
	Host string
	// HTTPS sends the HTTP probe over TLS (backends with protocol https),
	// verified against MonitorConfig.RootCAs.
	HTTPS bool
	// Interval between probes. Zero means DefaultInterval.
	Interval time.Duration
	// Timeout of one probe. Zero means DefaultTimeout.
	Timeout time.Duration
	// Rise is how many consecutive passes bring a target up. Zero means DefaultRise.
	Rise int
	// Fall is how many consecutive failures take it down. Zero means DefaultFall.
	Fall int
	// StatusMin and StatusMax bound the passing HTTP status codes,
	// inclusive. Zero means DefaultStatusMin and DefaultStatusMax.
	StatusMin, StatusMax int
}

// WithDefaults returns c with every zero field set to its default. It is
// the one place defaults are applied; negative values, which Validate
// rejects, also get the default so that a probe loop never spins.
func (c Config) WithDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Rise <= 0 {
		c.Rise = DefaultRise
	}
	if c.Fall <= 0 {
		c.Fall = DefaultFall
	}
	if c.StatusMin <= 0 {
		c.StatusMin = DefaultStatusMin
	}
	if c.StatusMax <= 0 {
		c.StatusMax = DefaultStatusMax
	}
	return c
}

// Validate reports the first bad field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Mode > TCP:
		return fmt.Errorf("health mode %d unknown: want off, http or tcp", c.Mode)
	case c.Path != "" && !strings.HasPrefix(c.Path, "/"):
		return fmt.Errorf("health path %q must start with /", c.Path)
	case c.Interval < 0:
		return fmt.Errorf("health interval %s is negative: use 0 for the default (%s)", c.Interval, DefaultInterval)
	case c.Timeout < 0:
		return fmt.Errorf("health timeout %s is negative: use 0 for the default (%s)", c.Timeout, DefaultTimeout)
	case c.Rise < 0:
		return fmt.Errorf("health rise %d is negative: use 0 for the default (%d)", c.Rise, DefaultRise)
	case c.Fall < 0:
		return fmt.Errorf("health fall %d is negative: use 0 for the default (%d)", c.Fall, DefaultFall)
	case c.StatusMin != 0 && (c.StatusMin < 100 || c.StatusMin > 599):
		return fmt.Errorf("health status minimum %d is not an HTTP status (100-599)", c.StatusMin)
	case c.StatusMax != 0 && (c.StatusMax < 100 || c.StatusMax > 599):
		return fmt.Errorf("health status maximum %d is not an HTTP status (100-599)", c.StatusMax)
	}
	if d := c.WithDefaults(); d.StatusMin > d.StatusMax {
		return fmt.Errorf("health status range %d-%d is empty: the minimum is above the maximum", d.StatusMin, d.StatusMax)
	}
	return nil
}

// Result is the outcome of one probe.
type Result struct {
	// At is when the probe finished.
	At time.Time
	// OK reports whether the probe passed.
	OK bool
	// Err says why it failed, in a few words fit for a log line:
	// "connect: connection refused", "status 503 (want 200-399)",
	// "timeout after 1s", "read: connection reset by peer". It unwraps to
	// the underlying error when there is one. Nil when OK.
	Err error
	// Duration of the probe.
	Duration time.Duration
}

// Observer receives a target's probe results. Probed is called from the
// target's probe goroutine, one call at a time per target, never with a
// lock of the Monitor held; the next probe waits until it returns, so it
// should not block.
type Observer interface {
	// Probed reports a result and the target's state after it. changed is
	// true when the result moved the state between up and down.
	Probed(r Result, up, changed bool)
}

// Target is one thing to probe.
type Target struct {
	// ID identifies the target across Monitor.Set calls: a target whose
	// ID, Address, Config (with defaults applied) and State stay the same
	// keeps its probe loop.
	ID string
	// Address is the host:port to probe.
	Address string
	Config  Config
	// State holds the rise/fall counters; it outlives the probe loop, so a
	// restarted loop (new Config) continues where the old one was. Nil
	// means a State owned by the Monitor, kept while the ID stays.
	State *State
	// Observer receives the results; nil means none. A Set that changes
	// only the Observer keeps the loop and hands it the new one.
	Observer Observer
}
