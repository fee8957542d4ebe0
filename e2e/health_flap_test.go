package e2e

import (
	"strings"
	"testing"
	"time"
)

// Probes that alternate pass and fail do not flap a backend: with rise=2
// and fall=3 they never make two passes nor three failures in a row. So a
// new replica that flaps from its start stays down and gets no request
// (the service has another replica up, so its first pass does not admit
// it), and a replica that is up and then starts to flap stays up and
// keeps serving. Neither logs a change: the one that was up logged its
// admission only.
func TestHealthFlappingDoesNotFlap(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	host, svc := "flap-"+sfx+".test", "flap-"+sfx
	const interval = 200 * time.Millisecond
	labels := healthLabels(host, svc, "interval", interval.String(), "rise", "2", "fall", "3")
	steady := runTestapp(t, appSpec{Name: "cutover-e2e-flap1-" + sfx, Network: network, Labels: labels})
	turned := runTestapp(t, appSpec{Name: "cutover-e2e-flap2-" + sfx, Network: network, Labels: labels})
	waitState(t, in, steady, "up", 10*time.Second)
	waitState(t, in, turned, "up", 10*time.Second)
	tr := startTraffic(t, in.http, trafficSpec{Host: host, GetWorkers: 4, Max: 5000, Path: "/flap", Pause: 20 * time.Millisecond}, 30*time.Second)

	fails := func() float64 {
		return metricValue(t, in, "cutover_health_checks_total", map[string]string{"service": svc, "result": "fail"})
	}
	failsBefore := fails()
	flapper := runTestapp(t, appSpec{Name: "cutover-e2e-flap3-" + sfx, Network: network, Labels: labels,
		Env: map[string]string{"TESTAPP_FLAP_HEALTH": "true"}})
	control(t, turned, "flap", true)
	waitServed(t, turned, 10)

	// Watch for 5 s: 25 probes of each.
	const watch = 5 * time.Second
	turnedBefore := served(t, turned)
	var samples, seen int
	for begin := time.Now(); time.Since(begin) < watch; samples++ {
		doc, err := fetchStatus(in.admin)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := doc.backendAt(flapper.IP)
		if ok {
			seen++
		}
		if ok && b.State != "down" {
			t.Fatalf("%s, flapping from its start, is %q after %s; want down: %v", flapper.Name, b.State, time.Since(begin), healthLogs(in, flapper))
		}
		if b, ok := doc.backendAt(turned.IP); !ok || b.State != "up" {
			t.Fatalf("%s, up and then flapping, is %q after %s; want up: %v", turned.Name, b.State, time.Since(begin), healthLogs(in, turned))
		}
		time.Sleep(50 * time.Millisecond)
	}
	flapped := fails() - failsBefore
	flapperServed, turnedServed := served(t, flapper), served(t, turned)-turnedBefore
	tr.stop()

	t.Logf("over %s (%d samples): %v failed probes; %s served %d, %s served %d; lines: %s %v, %s %v",
		watch, samples, flapped, flapper.Name, flapperServed, turned.Name, turnedServed,
		flapper.Name, healthLogs(in, flapper), turned.Name, healthLogs(in, turned))
	t.Logf("GETs: %s", &tr.gets)
	if seen < samples/2 {
		t.Errorf("the API showed %s in %d of %d samples only", flapper.Name, seen, samples)
	}
	// Each flapping replica fails every other probe: about 12 each in 5 s.
	if flapped < 2*10 {
		t.Errorf("%v failed probes in %s, want 20 or more: is the app flapping?", flapped, watch)
	}
	if flapperServed != 0 {
		t.Errorf("%s, never up, served %d requests", flapper.Name, flapperServed)
	}
	if turnedServed == 0 {
		t.Errorf("%s, up while flapping, served nothing in %s", turned.Name, watch)
	}
	if lines := healthLogs(in, flapper); len(lines) != 0 {
		t.Errorf("%s logged %v, want nothing: it never changed", flapper.Name, lines)
	}
	if lines := healthLogs(in, turned); len(lines) != 1 || !strings.HasPrefix(lines[0], "backend up: ") {
		t.Errorf("%s logged %v, want its admission only", turned.Name, lines)
	}
	if n := tr.gets.failed.Load(); n != 0 {
		t.Errorf("%d GETs failed, want none: %v", n, tr.gets.failures)
	}
}
