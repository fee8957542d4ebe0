package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A recreate deploy of a one-replica service with a named volume stops v1
// before v2 starts, so the volume has one writer at a time: what v1 wrote
// is read by v2, and the requests that arrive in the gap, when no
// container runs, are held by the proxy and served by v2, so that none
// fails.
func TestDeployRecreateKeepsVolumeAndHoldsRequests(t *testing.T) {
	e := newDeployEnv(t, map[string]map[string]string{"v1": nil, "v2": nil})
	vol := "cutover-e2e-vol-" + suffix()
	docker(t, "volume", "create", "--label", testLabel, vol)
	t.Cleanup(func() { // after the containers, whose cleanup runs first
		if _, err := dockerErr("volume", "rm", vol); err != nil {
			t.Errorf("remove volume: %v", err)
		}
	})
	s := e.newService(serviceSpec{Prefix: "rec", Image: "v1", Replicas: 1,
		Env: map[string]string{"TESTAPP_DATA_DIR": "/data"}, Args: []string{"-v", vol + ":/data"}})
	cl := &http.Client{Timeout: 5 * time.Second}
	dataVia(t, s, cl, "/data?write=written-by-v1", "v1", "written-by-v1\n")

	load := s.startLoad()
	c := e.deploy(s, "v2", "--strategy", "recreate", "--max-pause", "20s", "--health-timeout", "20s", "--drain-timeout", "10s")
	code, out := c.wait()
	load.finish(t)
	if code != 0 || !strings.Contains(out, s.name+" succeeded: recreate "+e.repo.ref("v2")) {
		t.Fatalf("cutover deploy exited %d, want 0 and a line saying the recreate deploy succeeded", code)
	}

	dataVia(t, s, cl, "/data", "v2", "written-by-v1\n")
	dataVia(t, s, cl, "/data?write=written-by-v2", "v2", "written-by-v1\nwritten-by-v2\n")
	news := s.runningImage("v2", 1)
	if len(news) == 1 {
		mounts := docker(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}", news[0].ID)
		if !strings.Contains(mounts, vol+":/data") {
			t.Errorf("new container %s mounts %q, want volume %s at /data", news[0].Name, mounts, vol)
		}
	}
	r := s.last()
	if r.Outcome != "succeeded" || r.Strategy != "recreate" {
		t.Errorf("last deploy: %+v, want a succeeded recreate deploy", r)
	}
	deployed(t, news, r)

	// The gap: from the old container out of rotation to the new one
	// served, as the CLI saw the steps.
	draining := c.waitLine(time.Second, stepPhase("drain"), "draining")
	stopped := c.waitLine(time.Second, stepPhase("stop"), "stopped")
	serving := c.waitLine(time.Second, stepPhase("serving"))
	gap := serving.At.Sub(draining.At)
	load.mu.Lock()
	slowest := load.slowest
	load.mu.Unlock()
	t.Logf("DEPLOY FIGURES: recreate gap %s (old drained and stopped in %s, new started and healthy in %s); longest request latency %s: requests were held, not failed",
		gap.Round(time.Millisecond), stopped.At.Sub(draining.At).Round(time.Millisecond), serving.At.Sub(stopped.At).Round(time.Millisecond), slowest.Round(time.Millisecond))
	if slowest < 100*time.Millisecond {
		t.Errorf("the slowest request took %s: none was held through the gap of %s", slowest, gap)
	}
	if n := s.deployCount(t, "recreate", "succeeded"); n != 1 {
		t.Errorf("cutover_deploys_total{strategy=recreate,result=succeeded} = %v, want 1", n)
	}
	logDuration(t, "recreate, 1 replica with a volume", r, load)
}

// dataVia sends GET path through the proxy and checks the answer: 200 from
// version, with body want.
func dataVia(t *testing.T, s *appService, cl *http.Client, path, version, want string) {
	t.Helper()
	res, body, err := s.get(cl, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if res.StatusCode != 200 || res.Header.Get("X-Version") != version || body != want {
		t.Fatalf("GET %s = %s X-Version %q %q, want 200 from %s %q", path, res.Status, res.Header.Get("X-Version"), body, version, want)
	}
}
