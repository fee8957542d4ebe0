package e2e

import (
	"testing"
	"time"
)

// One of three replicas hangs: it accepts connections and reads requests
// but answers none, /healthz included. With a response-header timeout of
// 1 s, the first GET that times out on it ejects it; each GET that times
// out is retried on another replica. So no GET fails, and at most one per
// worker (those already waiting on it when it was ejected) takes the
// timeout: each backend costs at most one timeout per request before it
// is out. The others serve; its probes time out too, so it goes down;
// when it answers again it comes back.
func TestHealthHungBackend(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	const timeout = time.Second
	in := startDocker(t, "--response-header-timeout", timeout.String())
	sfx := suffix()
	host, svc := "hang-"+sfx+".test", "hang-"+sfx
	rs := replicas(t, network, "hang", sfx, 3, healthLabels(host, svc, "interval", "500ms", "timeout", "1s"))
	for _, r := range rs {
		waitState(t, in, r, "up", 10*time.Second)
	}
	victim := rs[2]

	const workers = 6
	tr := startTraffic(t, in.http, trafficSpec{
		Host: host, GetWorkers: workers, Max: 5000, Path: "/hang", Pause: 10 * time.Millisecond, Slow: timeout,
	}, 30*time.Second)
	waitServed(t, victim, 20)

	control(t, victim, "hang", true)
	hungAt := time.Now()
	before := served(t, victim)
	in.waitLog(5*time.Second, isHealthLog(victim, "backend ejected"))
	ejectedAfter := time.Since(hungAt)
	// Its probes time out as well: down after fall=3 of them.
	down := in.waitLog(10*time.Second, isHealthLog(victim, "backend down"))
	downAfter := time.Since(hungAt)
	reached := stable(t, victim, tr, time.Second) - before

	control(t, victim, "hang", false)
	released := time.Now()
	waitNthLog(t, in, 2, 5*time.Second, isHealthLog(victim, "backend up"))
	upAfter := time.Since(released)
	waitServed(t, victim, 20)
	tr.stop()

	ejections := in.countLogs(isHealthLog(victim, "backend ejected"))
	t.Logf("%s hung: ejected %s after, down %s after (%q); %d requests reached it while hung; up %s after it answered again",
		victim.Name, ejectedAfter.Round(time.Millisecond), downAfter.Round(time.Millisecond), down["message"], reached, upAfter.Round(time.Millisecond))
	t.Logf("GETs: %s", &tr.gets)
	t.Logf("GETs that took the %s timeout: %v", timeout, tr.gets.slowOnes)
	t.Logf("retries: timeout %v, connect %v, error %v; ejections %d",
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": svc, "reason": "timeout"}),
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": svc, "reason": "connect"}),
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": svc, "reason": "error"}), ejections)
	if n := tr.gets.failed.Load(); n != 0 {
		t.Errorf("%d GETs failed, want none: %v", n, tr.gets.failures)
	}
	if n := tr.gets.slow.Load(); n > workers {
		t.Errorf("%d GETs took the %s timeout, want at most %d (one per worker)", n, timeout, workers)
	}
	if n := tr.gets.slow.Load(); n == 0 {
		t.Errorf("no GET took the %s timeout: did any reach the hung replica?", timeout)
	}
	if reached > workers {
		t.Errorf("%d requests reached the hung replica, want at most %d (one per worker)", reached, workers)
	}
	if ejectedAfter > timeout+time.Second {
		t.Errorf("ejected %s after it hung, want within the %s timeout and a little", ejectedAfter, timeout)
	}
	// One hang, one ejection: the other requests that time out on it
	// once it is out must not eject it again (and double its time).
	if ejections != 1 {
		t.Errorf("%d \"backend ejected\" lines for one hang, want 1: %v", ejections, healthLogs(in, victim))
	}
	if got := metricValue(t, in, "cutover_backend_ejections_total", map[string]string{"service": svc}); got != 1 {
		t.Errorf("cutover_backend_ejections_total{service=%q} = %v, want 1", svc, got)
	}
}
