package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// One of three replicas starts answering every request with a 500 while
// its /healthz still passes, so only passive outlier detection can take it
// out: after a few 500s it is ejected and gets no request, and a passing
// probe does not end that ejection early; when the ejection time is over
// and it has recovered, it serves again. A replica whose /healthz fails
// goes down after fall probes and comes back after rise passes.
func TestHealthEjectsFailingBackendAndBringsItBack(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	const ejection = 3 * time.Second
	in := startDocker(t, "--outlier-ejection", ejection.String())
	sfx := suffix()
	const workers = 6

	// The ejection holds for its time although probes pass; rise=1: one
	// pass brings each replica up.
	t.Run("ejected until it recovers", func(t *testing.T) {
		const interval = 500 * time.Millisecond
		host, svc := "eject-"+sfx+".test", "eject-"+sfx
		rs := replicas(t, network, "eject", sfx, 3, healthLabels(host, svc, "interval", interval.String(), "rise", "1"))
		for _, r := range rs {
			waitState(t, in, r, "up", 2*interval+5*time.Second)
		}
		// The replica that came up last is probed last: its next probe
		// is at least 0.9 × interval away.
		victim := lastUp(in, rs)
		upAt := time.Now()
		tr := startTraffic(t, in.http, trafficSpec{Host: host, GetWorkers: workers, Max: 5000, Path: "/eject", Pause: 30 * time.Millisecond}, 40*time.Second)
		waitServed(t, victim, 20)

		control(t, victim, "fail", true)
		failOn := time.Now()
		in.waitLog(5*time.Second, isHealthLog(victim, "backend ejected"))
		ejectedAfter := time.Since(failOn)
		if got := waitState(t, in, victim, "ejected", 2*time.Second); got > time.Second {
			t.Errorf("the API showed %s ejected %s after its ejection was logged", victim.Name, got)
		}
		failedWhileFailing := tr.gets.failed.Load()
		stable(t, victim, tr, time.Second)
		windowEnd := time.Since(upAt)
		if in.hasLog(isHealthLog(victim, "backend back from ejection")) {
			t.Fatalf("the ejection ended during the window (%s after it came up, probes every %s, ejection %s): %v",
				windowEnd.Round(time.Millisecond), interval, ejection, healthLogs(in, victim))
		}

		control(t, victim, "fail", false)
		failOff := time.Now()
		back := in.waitLog(2*ejection, isHealthLog(victim, "backend back from ejection"))
		if msg := fmt.Sprint(back["message"]); !strings.HasSuffix(msg, "ejection time over") {
			t.Errorf("%q: want the ejection to end because its time is over", msg)
		}
		backAfter := time.Since(failOff)
		if lasted := time.Since(failOn) - ejectedAfter; lasted < ejection-100*time.Millisecond {
			t.Errorf("the ejection lasted %s, want its whole %s: passing probes must not end an ejection for 500s", lasted, ejection)
		}
		waitServed(t, victim, 20)
		tr.stop()

		ejections := metricValue(t, in, "cutover_backend_ejections_total", map[string]string{"service": svc})
		t.Logf("%s ejected %s after it began to fail, after %d 500s; back %s after it recovered (ejection over); %v ejections",
			victim.Name, ejectedAfter.Round(time.Millisecond), failedWhileFailing, backAfter.Round(time.Millisecond), ejections)
		t.Logf("GETs: %s", &tr.gets)
		if ejections != 1 {
			t.Errorf("cutover_backend_ejections_total{service=%q} = %v, want 1", svc, ejections)
		}
		if n := in.countLogs(isHealthLog(victim, "backend ejected")); n != 1 {
			t.Errorf("%d \"backend ejected\" lines for %s, want 1: %v", n, victim.Name, healthLogs(in, victim))
		}
		// Five 500s in a row eject; the requests already on their way
		// to it when the fifth came back may fail too.
		if n := tr.gets.failed.Load(); n < 5 || n > 5+workers-1 {
			t.Errorf("%d GETs failed, want 5 to %d: %v", n, 5+workers-1, tr.gets.failures)
		}
	})

	// /healthz fails: down after fall=3 failures, up after rise=2 passes.
	t.Run("down and up", func(t *testing.T) {
		const interval = 300 * time.Millisecond
		host, svc := "downup-"+sfx+".test", "downup-"+sfx
		rs := replicas(t, network, "downup", sfx, 3, healthLabels(host, svc, "interval", interval.String(), "rise", "2", "fall", "3"))
		for _, r := range rs {
			waitState(t, in, r, "up", 10*time.Second)
		}
		victim := rs[1]
		tr := startTraffic(t, in.http, trafficSpec{Host: host, GetWorkers: 4, Max: 5000, Path: "/downup", Pause: 20 * time.Millisecond}, 30*time.Second)
		waitServed(t, victim, 20)

		control(t, victim, "healthy", false)
		off := time.Now()
		down := in.waitLog(5*time.Second, isHealthLog(victim, "backend down"))
		downAfter := time.Since(off)
		waitState(t, in, victim, "down", time.Second)
		stable(t, victim, tr, time.Second)

		control(t, victim, "healthy", true)
		on := time.Now()
		// The second "backend up" line: the first was its admission.
		up := waitNthLog(t, in, 2, 5*time.Second, isHealthLog(victim, "backend up"))
		upAfter := time.Since(on)
		waitState(t, in, victim, "up", time.Second)
		waitServed(t, victim, 20)
		tr.stop()

		t.Logf("%s down %s after /healthz began to fail (%q), up %s after it passed again (%q)",
			victim.Name, downAfter.Round(time.Millisecond), down["message"], upAfter.Round(time.Millisecond), up["message"])
		t.Logf("GETs: %s", &tr.gets)
		if want := "backend down: 3 consecutive probe failures: status 503 (want 200-399)"; down["message"] != want {
			t.Errorf("down log %q, want %q", down["message"], want)
		}
		if want := "backend up: 2 consecutive probe passes"; up["message"] != want {
			t.Errorf("up log %q, want %q", up["message"], want)
		}
		// Three failures take two intervals at least, two passes one.
		if downAfter < 2*interval*9/10 || upAfter < interval*9/10 {
			t.Errorf("down after %s, up after %s: faster than fall=3 and rise=2 probes at %s allow", downAfter, upAfter, interval)
		}
		if n := tr.gets.failed.Load(); n != 0 {
			t.Errorf("%d GETs failed, want none: %v", n, tr.gets.failures)
		}
	})
}

// lastUp returns the replica whose "backend up" line was logged last.
func lastUp(in *instance, rs []*ctr) *ctr {
	in.mu.Lock()
	defer in.mu.Unlock()
	last := rs[0]
	for _, l := range in.logs {
		for _, r := range rs {
			if isHealthLog(r, "backend up")(l) {
				last = r
			}
		}
	}
	return last
}
