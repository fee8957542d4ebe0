package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service A has a backend that is down (its /healthz fails) and one that
// is up. An unrelated labelled container, of service B, is started,
// stopped and started again, and replaced by one with other labels: each
// time cutover loads a new configuration and swaps its table, and A's
// backends keep their health: the down one stays down and gets no
// request, the up one stays up. A new table never resets a backend to up.
func TestHealthSurvivesUnrelatedChange(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	hostA, svcA := "keep-"+sfx+".test", "keep-"+sfx
	labelsA := healthLabels(hostA, svcA, "interval", "200ms")
	up := runTestapp(t, appSpec{Name: "cutover-e2e-keepup-" + sfx, Network: network, Labels: labelsA})
	down := runTestapp(t, appSpec{Name: "cutover-e2e-keepdown-" + sfx, Network: network, Labels: labelsA,
		Env: map[string]string{"TESTAPP_HEALTHY": "false"}})
	waitState(t, in, up, "up", 10*time.Second)
	waitState(t, in, down, "down", 10*time.Second)
	tr := startTraffic(t, in.http, trafficSpec{Host: hostA, GetWorkers: 4, Max: 5000, Path: "/keep", Pause: 20 * time.Millisecond}, 40*time.Second)
	waitServed(t, up, 10)

	w := watchStates(in, map[*ctr]string{up: "up", down: "down"})
	loadsBefore := in.countLogs(isConfigLoaded)
	hostB, svcB := "other-"+sfx+".test", "other-"+sfx
	other := runTestapp(t, appSpec{Name: "cutover-e2e-other1-" + sfx, Network: network,
		Labels: healthLabels(hostB, svcB, "interval", "200ms")})
	waitState(t, in, other, "up", 10*time.Second)
	for range 2 {
		other.stop(1)
		waitBackends(t, in, svcB, nil)
		other.start()
		waitState(t, in, other, "up", 10*time.Second)
	}
	// Replaced by a container with other labels: B gains a path and
	// loses its check.
	other2 := runTestapp(t, appSpec{Name: "cutover-e2e-other2-" + sfx, Network: network,
		Labels: dockerLabels("cutover.host", hostB, "cutover.service", svcB, "cutover.path", "/b")})
	other.remove()
	waitBackends(t, in, svcB, ips(other2))
	waitState(t, in, other2, "up", 10*time.Second)
	time.Sleep(500 * time.Millisecond) // a few more probes of A after the last change
	samples, violations := w.stop()
	loads := in.countLogs(isConfigLoaded) - loadsBefore
	tr.stop()

	t.Logf("%d configurations loaded while A was watched (%d samples); %s served %d; lines: %s %v, %s %v",
		loads, samples, down.Name, served(t, down), up.Name, healthLogs(in, up), down.Name, healthLogs(in, down))
	t.Logf("GETs: %s", &tr.gets)
	if loads < 6 {
		t.Errorf("%d configurations loaded during the changes to B, want 6 or more: the test shows nothing", loads)
	}
	if len(violations) > 0 {
		t.Errorf("A's backends changed state while B changed (%d of %d samples): %v", len(violations), samples, violations)
	}
	if n := served(t, down); n != 0 {
		t.Errorf("%s, down throughout, served %d requests", down.Name, n)
	}
	if lines := healthLogs(in, down); len(lines) != 0 {
		t.Errorf("%s logged %v, want nothing: it was down from its start", down.Name, lines)
	}
	if lines := healthLogs(in, up); len(lines) != 1 || !strings.HasPrefix(lines[0], "backend up: ") {
		t.Errorf("%s logged %v, want its admission only", up.Name, lines)
	}
	if n := tr.gets.failed.Load(); n != 0 {
		t.Errorf("%d GETs failed, want none: %v", n, tr.gets.failures)
	}
}

func isConfigLoaded(l map[string]any) bool { return l["message"] == "configuration loaded" }

// stateWatch samples the API states of some backends in the background
// and records each sample where one is not in the state it must keep.
type stateWatch struct {
	done       chan struct{}
	finished   chan struct{}
	samples    int
	violations []string
}

func watchStates(in *instance, want map[*ctr]string) *stateWatch {
	w := &stateWatch{done: make(chan struct{}), finished: make(chan struct{})}
	var once sync.Once
	go func() {
		defer close(w.finished)
		begin := time.Now()
		for {
			select {
			case <-w.done:
				return
			case <-time.After(30 * time.Millisecond):
			}
			doc, err := fetchStatus(in.admin)
			w.samples++
			if err != nil {
				once.Do(func() { w.violations = append(w.violations, "API: "+err.Error()) })
				continue
			}
			for c, state := range want {
				b, ok := doc.backendAt(c.IP)
				if !ok || b.State != state {
					w.violations = append(w.violations, fmt.Sprintf("%s: %s is %q (present %t), want %q",
						time.Since(begin).Round(time.Millisecond), c.Name, b.State, ok, state))
				}
			}
		}
	}()
	return w
}

// stop ends the watch and returns the number of samples and the
// violations seen.
func (w *stateWatch) stop() (int, []string) {
	close(w.done)
	<-w.finished
	return w.samples, w.violations
}
