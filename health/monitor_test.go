package health

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMonitorFirstProbeAtOnce(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var calls atomic.Int64
	now := func() time.Time { return at.Add(time.Duration(calls.Add(1)) * time.Second) }
	c := newCounting(t)
	var st State
	h := start(t, MonitorConfig{Now: now})
	rc := h.recorder()
	// An hour-long interval: the test ends long before a probe that
	// waited for it.
	h.m.Set([]Target{{ID: "a", Address: addr(c.Server), Config: Config{Mode: HTTP, Interval: time.Hour, Rise: 1}, State: &st, Observer: rc}})
	e := rc.next(t)
	if !e.r.OK || e.r.Err != nil || !e.up || !e.changed {
		t.Errorf("first probe = %+v, want a pass that brings the target up", e)
	}
	if e.r.At != at.Add(2*time.Second) || e.r.Duration != time.Second {
		t.Errorf("At, Duration = %v, %v, want the injected clock's", e.r.At, e.r.Duration)
	}
	if last, ok := st.Last(); !ok || last != e.r {
		t.Errorf("Last() = %+v, %v, want %+v", last, ok, e.r)
	}
}

func TestMonitorSetBeforeRun(t *testing.T) {
	c := newCounting(t)
	m := NewMonitor(MonitorConfig{})
	stop := make(chan struct{})
	defer close(stop)
	rc := &recorder{ch: make(chan event), stop: stop}
	m.Set([]Target{{ID: "a", Address: addr(c.Server), Config: hour(HTTP), State: new(State), Observer: rc}})
	if len(m.loops) != 0 || m.running {
		t.Fatal("Set before Run started a loop")
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	rc.next(t)
	// A second Run while the first runs is refused at once.
	if err := m.Run(ctx); err == nil {
		t.Error("a second concurrent Run returned nil")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run() = %v", err)
	}
	// After Run, Set starts nothing.
	m.Set([]Target{{ID: "b", Address: addr(c.Server), Config: hour(HTTP), State: new(State)}})
	if len(m.loops) != 0 {
		t.Error("Set after Run started a loop")
	}
}

func TestMonitorDownUp(t *testing.T) {
	s := newScripted(t)
	h := start(t, MonitorConfig{})
	rc := h.recorder()
	var st State
	h.m.Set([]Target{{ID: "a", Address: addr(s.Server),
		Config: Config{Mode: HTTP, Path: "/healthz", Interval: time.Millisecond, Timeout: wait, Fall: 2}, State: &st, Observer: rc}})
	steps := []struct {
		code             int
		up, changed      bool
		passes, failures int
		err              string
	}{
		{200, false, false, 1, 0, ""},
		{200, true, true, 2, 0, ""},
		{503, true, false, 0, 1, "status 503 (want 200-399)"},
		{503, false, true, 0, 2, "status 503 (want 200-399)"},
		{404, false, false, 0, 3, "status 404 (want 200-399)"},
		{204, false, false, 1, 0, ""},
		{302, true, true, 2, 0, ""},
	}
	for i, s1 := range steps {
		s.answer(t, s1.code)
		e := rc.next(t)
		// The next probe is waiting for its answer: the State holds still.
		p, f := st.Counts()
		if e.up != s1.up || e.changed != s1.changed || p != s1.passes || f != s1.failures || e.r.OK != (s1.err == "") {
			t.Errorf("step %d (%d): up %v changed %v counts %d,%d ok %v, want %v %v %d,%d",
				i, s1.code, e.up, e.changed, p, f, e.r.OK, s1.up, s1.changed, s1.passes, s1.failures)
		}
		if got := errText(e.r.Err); got != s1.err {
			t.Errorf("step %d: Err = %q, want %q", i, got, s1.err)
		}
		if st.Up() != s1.up {
			t.Errorf("step %d: Up() = %v", i, st.Up())
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestMonitorTCPAndDial(t *testing.T) {
	accepted := make(chan struct{}, 10)
	a := rawServer(t, func(c net.Conn) {
		accepted <- struct{}{}
		c.Close()
	})
	var dials atomic.Int64
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	h := start(t, MonitorConfig{Dial: dial})
	rc := h.recorder()
	h.m.Set([]Target{{ID: "tcp", Address: a, Config: Config{Mode: TCP, Interval: time.Hour, Rise: 1}, State: new(State), Observer: rc}})
	if e := rc.next(t); !e.r.OK || !e.up {
		t.Errorf("TCP probe = %+v, want a pass", e)
	}
	waitClosed(t, chanOf(accepted), "accept")
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials through MonitorConfig.Dial, want 1", n)
	}
}

// chanOf returns a channel closed when c yields a value.
func chanOf(c <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		select {
		case <-c:
		case <-time.After(wait):
		}
		close(done)
	}()
	return done
}

func TestMonitorSetKeepsUnchanged(t *testing.T) {
	a, b := newCounting(t), newCounting(t)
	h := start(t, MonitorConfig{})
	ra, rb, ra2 := h.recorder(), h.recorder(), h.recorder()
	st := new(State)
	ta := Target{ID: "a", Address: addr(a.Server), Config: hour(HTTP), State: st, Observer: ra}
	h.m.Set([]Target{ta})
	ra.next(t)
	la := h.loop("a")

	// The same target, with its defaults spelled out and another
	// Observer, and a new one.
	ta.Config.Rise, ta.Config.Fall, ta.Observer = DefaultRise, DefaultFall, ra2
	h.m.Set([]Target{ta, {ID: "b", Address: addr(b.Server), Config: hour(HTTP), State: new(State), Observer: rb}})
	rb.next(t)
	if h.loop("a") != la {
		t.Error("Set replaced the loop of an unchanged target")
	}
	if got := la.target.Load().Observer; got != ra2 {
		t.Error("the kept loop did not get the new Observer")
	}
	select {
	case <-la.done:
		t.Error("the loop of an unchanged target exited")
	default:
	}
	if n := a.hits.Load(); n != 1 {
		t.Errorf("unchanged target probed %d times, want 1", n)
	}
}

func TestMonitorSetRestartsChanged(t *testing.T) {
	a := newCounting(t)
	h := start(t, MonitorConfig{})
	rc := h.recorder()
	st := new(State)
	ta := Target{ID: "a", Address: addr(a.Server), Config: Config{Mode: HTTP, Interval: time.Hour, Rise: 1}, State: st, Observer: rc}
	h.m.Set([]Target{ta})
	if e := rc.next(t); !e.up || !e.changed {
		t.Fatalf("first probe = %+v, want up", e)
	}
	old := h.loop("a")

	ta.Config.Fall = 5
	h.m.Set([]Target{ta})
	e := rc.next(t) // at once, not after an hour
	waitClosed(t, old.done, "exit of the old loop")
	if !e.up || e.changed {
		t.Errorf("probe after restart = %+v, want up, unchanged", e)
	}
	if p, _ := st.Counts(); p != 2 {
		t.Errorf("passes = %d, want 2: the State carried over", p)
	}
	if l := h.loop("a"); l == old || l == nil || l.target.Load().State != st {
		t.Error("Set did not start a new loop with the same State")
	}
	if n := a.hits.Load(); n != 2 {
		t.Errorf("%d probes, want 2", n)
	}
}

// TestMonitorRestartWaitsForOldLoop removes a target while its probe is in
// flight and adds it back: the new loop probes only after the old one has
// exited, so one State never has two loops.
func TestMonitorRestartWaitsForOldLoop(t *testing.T) {
	s := newScripted(t)
	h := start(t, MonitorConfig{})
	rc := h.recorder()
	ta := Target{ID: "a", Address: addr(s.Server), Config: hour(HTTP), State: new(State), Observer: rc}
	h.m.Set([]Target{ta})
	waitClosed(t, chanOf(s.arrived), "first probe")
	old := h.loop("a")
	h.m.Set(nil)
	h.m.Set([]Target{ta})
	// The old request may still take an answer before it sees that it
	// was canceled: answer until the new loop reports.
	fed := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case s.status <- http.StatusOK:
			case <-fed:
				return
			}
		}
	})
	rc.next(t)
	close(fed)
	wg.Wait()
	select {
	case <-old.done:
	default:
		t.Error("the new loop reported while the old one was still running")
	}
}

func TestMonitorSetRemoves(t *testing.T) {
	a := newCounting(t)
	h := start(t, MonitorConfig{})
	rc := h.recorder()
	st := new(State)
	h.m.Set([]Target{{ID: "a", Address: addr(a.Server), Config: Config{Mode: HTTP, Interval: time.Millisecond}, State: st, Observer: rc}})
	for range 3 {
		rc.next(t)
	}
	l := h.loop("a")
	h.m.Set(nil)
	waitClosed(t, l.done, "exit of the removed target's loop")
	if n := h.loopCount(); n != 0 {
		t.Errorf("%d loops after removing every target", n)
	}
	// Mode Off gets no loop and its State is left alone.
	h.m.Set([]Target{{ID: "a", Address: addr(a.Server), State: st, Observer: rc}})
	if n := h.loopCount(); n != 0 {
		t.Errorf("%d loops for a target with Mode Off", n)
	}
}

func TestMonitorNilState(t *testing.T) {
	a := newCounting(t)
	h := start(t, MonitorConfig{})
	rc := h.recorder()
	ta := Target{ID: "a", Address: addr(a.Server), Config: hour(HTTP), Observer: rc}
	h.m.Set([]Target{ta})
	rc.next(t)
	l := h.loop("a")
	h.m.Set([]Target{ta})
	if h.loop("a") != l {
		t.Error("a target without State was restarted by an unchanged Set")
	}
}

func TestMonitorRunStopsEverything(t *testing.T) {
	a := newCounting(t)
	refused := closedAddr(t)
	ignore := goleak.IgnoreCurrent()
	m := NewMonitor(MonitorConfig{})
	stop := make(chan struct{})
	rc := &recorder{ch: make(chan event), stop: stop}
	var targets []Target
	for i := range 5 {
		targets = append(targets,
			Target{ID: "http" + strconv.Itoa(i), Address: addr(a.Server), Config: Config{Mode: HTTP, Interval: time.Millisecond}, State: new(State), Observer: rc},
			Target{ID: "tcp" + strconv.Itoa(i), Address: refused, Config: Config{Mode: TCP, Interval: time.Millisecond}, State: new(State), Observer: rc})
	}
	m.Set(targets)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	for range 20 {
		rc.next(t)
	}
	m.mu.Lock()
	var loops []*loop
	for _, l := range m.loops {
		loops = append(loops, l)
	}
	m.mu.Unlock()
	cancel()
	close(stop)
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run() = %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	for _, l := range loops {
		select {
		case <-l.done:
		default:
			t.Fatal("Run returned before a loop exited")
		}
	}
	if len(m.loops) != 0 || len(m.exiting) != 0 || m.running {
		t.Errorf("after Run: %d loops, %d exiting, running %v", len(m.loops), len(m.exiting), m.running)
	}
	goleak.VerifyNone(t, ignore)
}

func TestMonitorConcurrentSet(t *testing.T) {
	a := newCounting(t)
	h := start(t, MonitorConfig{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				var ts []Target
				for k := range (i + j) % 5 {
					ts = append(ts, Target{ID: strconv.Itoa(k), Address: addr(a.Server),
						Config: Config{Mode: Mode(1 + (i+j)%2), Interval: time.Millisecond}})
				}
				h.m.Set(ts)
			}
		})
	}
	wg.Wait()
	rc := h.recorder()
	h.m.Set([]Target{{ID: "x", Address: addr(a.Server), Config: hour(HTTP), Observer: rc}})
	rc.next(t)
	if n := h.loopCount(); n != 1 {
		t.Errorf("%d loops after the last Set of one target", n)
	}
}

func TestJittered(t *testing.T) {
	tests := []struct {
		d    time.Duration
		j, r float64
		want time.Duration
	}{
		{10 * time.Second, 0.1, 0, 9 * time.Second},
		{10 * time.Second, 0.1, 0.5, 10 * time.Second},
		{10 * time.Second, 0.1, 0.25, 9500 * time.Millisecond},
		{10 * time.Second, 0, 0.9, 10 * time.Second},
		{10 * time.Second, 1, 0, 0},
	}
	for _, tt := range tests {
		if got := jittered(tt.d, tt.j, tt.r); got != tt.want {
			t.Errorf("jittered(%s, %v, %v) = %s, want %s", tt.d, tt.j, tt.r, got, tt.want)
		}
	}
	if got := jittered(10*time.Second, 0.1, 0.999999); got >= 11*time.Second || got < 10999*time.Millisecond {
		t.Errorf("jittered near r=1 = %s, want just under 11s", got)
	}
	for _, c := range []struct{ in, want float64 }{{0, DefaultJitter}, {-1, 0}, {0.3, 0.3}, {2, 1}} {
		if got := NewMonitor(MonitorConfig{Jitter: c.in}).jitter; got != c.want {
			t.Errorf("Jitter %v became %v, want %v", c.in, got, c.want)
		}
	}
}

func TestNextProbeIsQuickUntilTheFirstPass(t *testing.T) {
	cases := []struct {
		interval time.Duration
		passed   bool
		age      time.Duration
		want     time.Duration
	}{
		{2 * time.Second, false, 0, StartupInterval},
		{2 * time.Second, false, StartupWindow - time.Second, StartupInterval},
		{2 * time.Second, false, StartupWindow, 2 * time.Second},
		{2 * time.Second, true, 0, 2 * time.Second},
		{100 * time.Millisecond, false, 0, 100 * time.Millisecond},
	}
	for _, c := range cases {
		if got := nextProbe(c.interval, c.passed, c.age); got != c.want {
			t.Errorf("nextProbe(%s, %v, %s) = %s, want %s", c.interval, c.passed, c.age, got, c.want)
		}
	}
}
