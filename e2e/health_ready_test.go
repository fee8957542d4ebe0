package e2e

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// A new replica whose app needs 3 s before its /healthz passes, and that
// has no Docker HEALTHCHECK (so only cutover's probe gates it), gets no
// request until cutover has seen it pass: while the API shows it anything
// but up, it has served nothing (the app counts echo requests only, not
// the probes of /healthz). Its admission is logged as "backend up" after
// rise=2 passes. The ready replica serves all the while.
func TestHealthNoTrafficBeforeReady(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	host, svc := "ready-"+sfx+".test", "ready-"+sfx
	labels := healthLabels(host, svc, "interval", "200ms")
	ready := runTestapp(t, appSpec{Name: "cutover-e2e-ready1-" + sfx, Network: network, Labels: labels})
	waitState(t, in, ready, "up", 10*time.Second)
	tr := startTraffic(t, in.http, trafficSpec{Host: host, GetWorkers: 4, Max: 5000, Path: "/ready", Pause: 10 * time.Millisecond}, 30*time.Second)
	waitServed(t, ready, 20)

	const readyAfter = 3 * time.Second
	slow := runTestapp(t, appSpec{Name: "cutover-e2e-ready2-" + sfx, Network: network, Labels: labels,
		Env: map[string]string{"TESTAPP_READY_AFTER": readyAfter.String()}})
	started := time.Now()

	// Each sample reads the app's count first, then the API: a backend
	// the API shows not up afterwards was not up when the count was read.
	// (It never goes from up back to down here.)
	var samples int
	var upAfter time.Duration
	var seenStates []string
	deadline := started.Add(readyAfter + 10*time.Second)
	for upAfter == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s not up within %s; states seen: %v; its lines: %v", slow.Name, readyAfter+10*time.Second, seenStates, healthLogs(in, slow))
		}
		n, err := slow.requests()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			// docker run returned before the app listens: it has
			// served nothing yet.
			n = 0
		case err != nil:
			t.Fatalf("read /stats of %s: %v", slow.Name, err)
		}
		state, err := stateOf(in, slow)
		if err != nil {
			t.Fatal(err)
		}
		if len(seenStates) == 0 || seenStates[len(seenStates)-1] != state {
			seenStates = append(seenStates, state)
		}
		samples++
		switch {
		case state == "up":
			upAfter = time.Since(started)
		case n != 0:
			t.Fatalf("%s served %d requests while cutover showed it %q, %s after it started", slow.Name, n, state, time.Since(started).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	upLine := in.waitLog(time.Second, isHealthLog(slow, "backend up"))
	waitServed(t, slow, 20)
	tr.stop()

	t.Logf("%s up %s after docker run returned (ready after %s), %d samples, states %v, %q",
		slow.Name, upAfter.Round(time.Millisecond), readyAfter, samples, seenStates, upLine["message"])
	t.Logf("GETs: %s", &tr.gets)
	if upAfter < readyAfter-500*time.Millisecond {
		t.Errorf("%s was up %s after it started, before its app was ready (%s)", slow.Name, upAfter, readyAfter)
	}
	if want := "backend up: 2 consecutive probe passes"; upLine["message"] != want {
		t.Errorf("%q, want %q: rise=2, and the service had a ready backend", upLine["message"], want)
	}
	for _, s := range seenStates[:len(seenStates)-1] {
		if s != "down" && s != "absent" {
			t.Errorf("before it was up, %s was %q; want down (or not yet known)", slow.Name, s)
		}
	}
	if n := tr.gets.failed.Load(); n != 0 {
		t.Errorf("%d GETs failed, want none: %v", n, tr.gets.failures)
	}
}
