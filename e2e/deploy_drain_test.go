package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An old container whose process ignores SIGTERM is drained before it is
// stopped, and killed only after its stop timeout: a slow request in
// flight on it when the drain begins completes, no request reaches it
// once it is drained although it serves until the SIGKILL, and no request
// of the load fails. A second deploy of the service meanwhile is refused.
func TestDeployDrainsContainerThatIgnoresSIGTERM(t *testing.T) {
	e := newDeployEnv(t, map[string]map[string]string{"v1": nil, "v2": nil})
	s := e.newService(serviceSpec{Prefix: "term", Image: "v1", Replicas: 1,
		Env: map[string]string{"TESTAPP_IGNORE_SIGTERM": "true"}, Args: []string{"--stop-timeout", "3"}})
	olds := s.runningImage("v1", 1)
	if len(olds) != 1 {
		t.FailNow()
	}
	old := &ctr{t: t, ID: olds[0].ID, Name: olds[0].Name, IP: olds[0].IP}
	began := time.Now()
	load := s.startLoad()

	// Once the new container is started, and until it passed two probes,
	// the old one is still alone: the slow request lands on it.
	c := e.deploy(s, "v2", "--drain-timeout", "20s", "--health-timeout", "30s")
	c.waitLine(30*time.Second, stepPhase("start"), old.Name, "started")
	slow := make(chan slowAnswer, 1)
	go func() { slow <- slowGet(s, "/?sleep=4s") }()
	draining := c.waitLine(30*time.Second, stepPhase("drain"), old.Name, "draining")
	atDrain := served(t, old)
	// One deploy per service at a time: a second one is refused at once.
	if code, out := e.deploy(s, "v2").wait(); code == 0 || !strings.Contains(out, "409") || !strings.Contains(out, "already running") {
		t.Errorf("a second deploy while one runs: exit %d, want non-zero and a 409 saying a deploy is already running", code)
	}
	drained := c.waitLine(30*time.Second, stepPhase("drain"), old.Name, "drained")
	atDrained := served(t, old)
	// It ignores SIGTERM: it serves until the SIGKILL, and must get no
	// request meanwhile.
	last, lastAt := atDrained, drained.At
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n, err := old.requests()
		if err != nil {
			break
		}
		last, lastAt = n, time.Now()
	}
	code, _ := c.wait()
	sa := <-slow
	load.finish(t)
	if code != 0 {
		t.Fatalf("cutover deploy exited %d", code)
	}

	hostname := old.ID[:12]
	if sa.err != nil || sa.code != 200 || sa.backend != hostname || sa.version != "v1" {
		t.Errorf("the slow request: %d from %q %q, %v; want 200 from the old container %s (v1)", sa.code, sa.backend, sa.version, sa.err, hostname)
	}
	if !draining.At.Before(sa.at) {
		t.Fatalf("the drain began at %s, after the slow request ended at %s: the test shows nothing; make its sleep longer",
			draining.At.Format("15:04:05.000"), sa.at.Format("15:04:05.000"))
	}
	if drained.At.Before(sa.at.Add(-200 * time.Millisecond)) {
		t.Errorf("%s was drained at %s, before the slow request in flight on it ended at %s",
			old.Name, drained.At.Format("15:04:05.000"), sa.at.Format("15:04:05.000"))
	}
	if last != atDrained {
		t.Errorf("%s served %d requests after it was drained (%d → %d)", old.Name, last-atDrained, atDrained, last)
	}
	window := lastAt.Sub(drained.At)
	if window < 2*time.Second {
		t.Errorf("%s answered /stats for only %s after it was drained: it should live until its stop timeout (3s) ends", old.Name, window)
	}

	// The engine's events: SIGTERM after the drain, SIGKILL after the
	// stop timeout.
	term, kill, exit := containerSignals(t, old.ID, began)
	if term.IsZero() || exit == "" {
		t.Fatalf("no SIGTERM or no exit of %s among the engine's events", old.Name)
	}
	if term.Before(drained.At.Add(-200 * time.Millisecond)) {
		t.Errorf("%s got SIGTERM at %s, before it was drained at %s", old.Name, term.Format("15:04:05.000"), drained.At.Format("15:04:05.000"))
	}
	if exit != "137" || kill.IsZero() || kill.Sub(term) < 2500*time.Millisecond {
		t.Errorf("%s: SIGTERM at %s, SIGKILL at %s, exit code %s; want SIGKILL 3s after SIGTERM and exit code 137",
			old.Name, term.Format("15:04:05.000"), kill.Format("15:04:05.000"), exit)
	}
	t.Logf("slow request: sent when the new container started, ended %s; drain began %s and ended %s (CLI); SIGTERM %s, SIGKILL %s (exit %s); /stats of the old container: %d at the drain, %d drained, %d last seen %s after",
		sa.at.Format("15:04:05.000"), draining.At.Format("15:04:05.000"), drained.At.Format("15:04:05.000"),
		term.Format("15:04:05.000"), kill.Format("15:04:05.000"), exit, atDrain, atDrained, last, window.Round(time.Millisecond))
	s.answers("v2", 20)
	s.runningImage("v2", 1)
	logDuration(t, "rolling, 1 replica that ignores SIGTERM, stop timeout 3s, a 4s request in flight", s.last(), load)
}

// slowAnswer is the outcome of a slow request and when it ended.
type slowAnswer struct {
	code             int
	backend, version string
	err              error
	at               time.Time
}

func slowGet(s *appService, path string) slowAnswer {
	res, _, err := s.get(&http.Client{Timeout: 30 * time.Second}, path)
	a := slowAnswer{err: err, at: time.Now()}
	if res != nil {
		a.code, a.backend, a.version = res.StatusCode, res.Header.Get("X-Backend"), res.Header.Get("X-Version")
	}
	return a
}

// containerSignals reads the engine's events about a container since
// since: when it was sent SIGTERM and SIGKILL, and its exit code.
func containerSignals(t *testing.T, id string, since time.Time) (term, kill time.Time, exit string) {
	t.Helper()
	out := docker(t, "events", "--since", strconv.FormatInt(since.Add(-time.Second).Unix(), 10),
		"--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "container="+id, "--filter", "type=container",
		"--format", `{{.TimeNano}}|{{.Action}}|{{index .Actor.Attributes "signal"}}|{{index .Actor.Attributes "exitCode"}}`)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("docker events: %q: %v", line, err)
		}
		at := time.Unix(0, ns)
		switch {
		case f[1] == "kill" && f[2] == "15":
			term = at
		case f[1] == "kill" && f[2] == "9":
			kill = at
		case f[1] == "die":
			exit = f[3]
		}
	}
	if term.IsZero() || exit == "" {
		t.Logf("docker events of %s:\n%s", id, out)
	}
	return term, kill, exit
}
