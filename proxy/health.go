package proxy

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
	"github.com/cutoverproxy/cutover/health"
)

// Health state lives on the Backend and so survives every table swap:
// check holds the active check's rise/fall counters, outlier the passive
// failure counts, and the out bits outDown and outEjected what they
// decided. The Monitor (owned by Proxy.Run) probes every backend whose
// service configures a check; a new backend is down until its first
// probes pass.

// checkConfig maps a service's health keys to a probe configuration.
func checkConfig(h discovery.Health, protocol discovery.Protocol) health.Config {
	c := health.Config{
		Path: h.Path, Host: h.Host, HTTPS: protocol == discovery.HTTPS, Interval: h.Interval, Timeout: h.Timeout,
		Rise: h.Rise, Fall: h.Fall, StatusMin: h.StatusMin, StatusMax: h.StatusMax,
	}
	switch {
	case h.Mode == "tcp":
		c.Mode, c.Path = health.TCP, ""
	case h.Mode == "http" || h.Path != "":
		c.Mode = health.HTTP
		if c.Path == "" {
			c.Path = "/"
		}
	}
	return c.WithDefaults()
}

// probeAddress is the address probes go to: the backend's, or its host
// with the port of health.port.
func probeAddress(addr string, port int) string {
	if port == 0 {
		return addr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// configureHealth applies the service's health settings. Turning a check
// on for a backend that never passed one takes it out until it does;
// turning it off brings it back. Called by Update only.
func (b *Backend) configureHealth(h discovery.Health) {
	b.slowStart.Store(int64(h.SlowStart))
	cfg := checkConfig(h, b.protocol)
	if cfg == b.checkCfg {
		return
	}
	wasOff := b.checkCfg.Mode == health.Off
	b.checkCfg = cfg
	b.rise.Store(int32(cfg.Rise))
	switch {
	case cfg.Mode == health.Off:
		b.rise.Store(0)
		b.setBits(outDown, 0)
	case wasOff && !b.check.Up():
		b.setBits(outDown, outDown)
	}
}

// target is the backend's probe target, or false when it has no check.
func (b *Backend) target(h discovery.Health) (health.Target, bool) {
	if b.checkCfg.Mode == health.Off {
		return health.Target{}, false
	}
	return health.Target{
		ID: b.id, Address: probeAddress(b.addr, h.Port), Config: b.checkCfg,
		State: &b.check, Observer: b,
	}, true
}

// Probed implements health.Observer: it is called on the backend's probe
// goroutine after every probe.
func (b *Backend) Probed(r health.Result, up, changed bool) {
	st := b.stats.Load()
	if r.OK {
		st.checksPass.Add(1)
	} else {
		st.checksFail.Add(1)
	}
	if r.OK && !up && !b.othersAvailable() {
		// Nothing else can serve: one pass is enough.
		b.check.SetUp()
		up, changed = true, true
	}
	if changed {
		b.checkChanged(r, up)
	}
	if r.OK && b.out.Load()&outEjected != 0 && !b.ejectedForStatus.Load() {
		// The probe shows it can be reached again. An ejection for 5xx
		// answers runs its course: a passing probe does not show that
		// live requests would pass.
		b.endEjection("health check passed")
	}
}

func (b *Backend) checkChanged(r health.Result, up bool) {
	passes, fails := b.check.Counts()
	log := b.proxy.log
	if up {
		b.setBits(outDown, 0)
		log.Info().Str("service", b.service).Str("backend", b.Name()).
			Msgf("backend up: %d consecutive probe passes", max(passes, 1))
		return
	}
	b.setBits(outDown, outDown)
	log.Warn().Str("service", b.service).Str("backend", b.Name()).
		Msgf("backend down: %d consecutive probe failures: %v", fails, r.Err)
}

// othersAvailable reports whether another backend of the service can take
// requests now.
func (b *Backend) othersAvailable() bool {
	svc := b.proxy.table.Load().Service(b.service)
	if svc == nil {
		return false
	}
	for _, o := range svc.backends {
		if o != b && o.Available() {
			return true
		}
	}
	return false
}

// succeeded records a response that counts as healthy for passive
// detection.
func (b *Backend) succeeded() { b.outlier.Success() }

// refusedEjection is the first ejection of a backend that refused the
// connections (nothing listens on its port): a container that has started
// and whose program does not listen yet, or one that restarts. The refusal
// costs a retry next to nothing, and the backend may listen any moment:
// its ejections start from this, not from the base ejection, and double
// as those do.
const refusedEjection = time.Second

// failed records a connection failure or a 5xx response (err is the
// failure, nil for a 5xx). It ejects the backend when that many failed
// in a row, unless no other backend of the service is available: the
// last one is never ejected. A timeout ejects at once: a backend that
// hangs costs each request the whole timeout. Refused connections eject
// for shorter (refusedEjection).
func (b *Backend) failed(reason string, err error) {
	timeout := err != nil && isTimeout(err)
	if b.out.Load()&outEjected != 0 {
		// Requests that were in flight when it was ejected: it is out
		// already, and one fault is one ejection.
		return
	}
	now := time.Now()
	var eject bool
	var d time.Duration
	if timeout {
		eject, d = b.outlier.Trip(now)
	} else {
		eject, d = b.outlier.Failure(now)
	}
	if !eject {
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		d = b.outlier.EjectionFrom(now, refusedEjection)
	}
	if !b.othersAvailable() {
		b.outlier.Declined()
		return
	}
	if old := b.setBits(outEjected, outEjected); old&outEjected != 0 {
		// Another request's failure ejected it meanwhile (timeouts of
		// concurrent requests end together): one fault, one ejection.
		// This signal came after that ejection restarted the count;
		// start it again, or it would stay at the threshold.
		b.outlier.Declined()
		return
	}
	b.outlier.Ejected(now, d)
	b.ejectedForStatus.Store(strings.HasPrefix(reason, "status "))
	b.stats.Load().ejections.Add(1)
	t := time.AfterFunc(d, func() { b.endEjection("ejection time over") })
	if old := b.ejectTimer.Swap(t); old != nil {
		old.Stop()
	}
	if b.removed() {
		t.Stop()
	}
	b.proxy.log.Warn().Str("service", b.service).Str("backend", b.Name()).Dur("for", d).
		Msg("backend ejected: " + reason)
}

func (b *Backend) endEjection(why string) {
	if t := b.ejectTimer.Swap(nil); t != nil {
		t.Stop()
	}
	if old := b.setBits(outEjected, 0); old&outEjected != 0 {
		b.proxy.log.Info().Str("service", b.service).Str("backend", b.Name()).Msg("backend back from ejection: " + why)
	}
}

// ramp is the share of its weight a backend gets in slow start, in
// thousandths: 1000 when slow start is off or over.
func (b *Backend) ramp(now time.Time) int64 {
	ss := b.slowStart.Load()
	if ss <= 0 {
		return 1000
	}
	elapsed := now.UnixNano() - b.upSince.Load()
	if elapsed >= ss {
		return 1000
	}
	return max(elapsed*1000/ss, 1)
}

// CheckState is a snapshot of a backend's active health check.
type CheckState struct {
	Up               bool
	Passes, Failures int
	Last             health.Result
	HasLast          bool
}

// Check returns the state of the backend's active health check, or false
// when its service has none.
func (b *Backend) Check() (CheckState, bool) {
	if b.rise.Load() == 0 {
		return CheckState{}, false
	}
	st := CheckState{Up: b.check.Up()}
	st.Passes, st.Failures = b.check.Counts()
	st.Last, st.HasLast = b.check.Last()
	return st, true
}

// Why says why the backend is out of rotation, or "" when it is not.
func (b *Backend) Why() string {
	out := b.out.Load()
	switch {
	case out == 0:
		return ""
	case out&outRemoved != 0:
		return "removed from the configuration"
	case out&outDraining != 0:
		return "draining: its container is stopping"
	case out&outDeployDrain != 0:
		return "draining: a deploy is replacing it"
	case out&outUnhealthy != 0:
		return "its Docker HEALTHCHECK reports unhealthy"
	case out&outStarting != 0:
		return "its Docker HEALTHCHECK has not passed yet"
	case out&outDown != 0:
		return b.downReason()
	}
	return "ejected after consecutive failures of live requests"
}

func (b *Backend) downReason() string {
	last, ok := b.check.Last()
	if !ok {
		return "health check: waiting for the first probe"
	}
	passes, fails := b.check.Counts()
	if last.OK {
		return "health check: " + strconv.Itoa(passes) + " of " + strconv.Itoa(int(b.rise.Load())) + " passes needed"
	}
	return "health check: " + strconv.Itoa(fails) + " consecutive failures: " + last.Err.Error()
}
