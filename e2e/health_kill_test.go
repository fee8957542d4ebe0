package e2e

import (
	"testing"
	"time"
)

// docker kill (SIGKILL) of one of three checked replicas, while GETs and
// POSTs run, costs no GET: those inside the killed one when it died are
// retried on another replica, and so are those that find it gone. A POST
// that was inside it may fail (it may have had an effect, so it is not
// replayed); no other may, so at most one per POST worker.
func TestHealthKillCostsNoGET(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	host, svc := "kill-"+sfx+".test", "kill-"+sfx
	rs := replicas(t, network, "kill", sfx, 3, healthLabels(host, svc, "interval", "500ms"))
	for _, r := range rs {
		waitState(t, in, r, "up", 10*time.Second)
	}
	victim := rs[0]

	// 6 GET and 2 POST workers; each request spends 20 ms in the app, so
	// that some are likely inside the victim when it is killed.
	const getWorkers, postWorkers = 6, 2
	tr := startTraffic(t, in.http, trafficSpec{
		Host: host, GetWorkers: getWorkers, PostWorkers: postWorkers,
		Max: 5000, Path: "/kill?sleep=20ms", PostBody: 2 << 10,
	}, 25*time.Second)
	waitServed(t, victim, 50)
	killed := time.Now()
	docker(t, "kill", victim.Name)
	waitBackends(t, in, svc, ips(rs[1:]...))
	gone := time.Since(killed)
	// The load goes on without it for a while; both others serve.
	for _, r := range rs[1:] {
		waitServed(t, r, 50)
	}
	tr.stop()

	t.Logf("killed %s; it left the service after %s", victim.Name, gone.Round(time.Millisecond))
	t.Logf("GETs: %s", &tr.gets)
	t.Logf("POSTs: %s", &tr.posts)
	t.Logf("retries: connect %v, error %v, timeout %v",
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": svc, "reason": "connect"}),
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": svc, "reason": "error"}),
		metricValue(t, in, "cutover_retries_total", map[string]string{"service": svc, "reason": "timeout"}))
	if n := tr.gets.failed.Load(); n != 0 {
		t.Errorf("%d GETs failed, want none: %v", n, tr.gets.failures)
	}
	if n := tr.posts.failed.Load(); n > postWorkers {
		t.Errorf("%d POSTs failed, want at most %d (one in flight per worker): %v", n, postWorkers, tr.posts.failures)
	} else if n > 0 {
		t.Logf("%d POSTs failed, at most one per worker, as allowed: %v", n, tr.posts.failures)
	}
	if tr.gets.count(victim) == 0 || tr.posts.count(victim) == 0 {
		t.Errorf("%s answered no GET or no POST before it was killed: the test shows nothing", victim.Name)
	}
}
