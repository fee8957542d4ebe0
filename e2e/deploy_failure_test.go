package e2e

import (
	"slices"
	"strings"
	"testing"
)

// A deploy of a v3 image whose health check never passes reports failure
// (exit code non-zero, rolled back) after the health timeout; the v3
// containers are gone, and the v2 containers, never touched, serve
// throughout: no request fails and none is answered by v3.
func TestDeployUnhealthyImageRollsBack(t *testing.T) {
	e := newDeployEnv(t, map[string]map[string]string{"v2": nil, "v3": {"TESTAPP_HEALTHY": "false"}})
	s := e.newService(serviceSpec{Prefix: "sick", Image: "v2", Replicas: 3})
	before := s.runningImage("v2", 3)

	load := s.startLoad()
	c := e.deploy(s, "v3", "--health-timeout", "4s", "--drain-timeout", "10s")
	code, out := c.wait()
	load.finish(t)
	if code == 0 {
		t.Errorf("cutover deploy of an image that never passes its health check exited 0")
	}
	for _, want := range []string{s.name + " rolled-back: rolling " + e.repo.ref("v3"), "did not pass its health checks within 4s", "rolled back"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	if n := load.count("v3"); n != 0 {
		t.Errorf("%d requests were answered by v3, whose health check never passed", n)
	}
	if load.count("v2") == 0 {
		t.Errorf("no request was answered by v2")
	}

	after := s.runningImage("v2", 3)
	if !slices.Equal(boxIDs(after), boxIDs(before)) {
		t.Errorf("containers after the failed deploy: %v, want the v2 ones untouched: %v", after, before)
	}
	s.answers("v2", 30)
	r := s.last()
	if r.Outcome != "rolled-back" || r.Image != e.repo.ref("v3") || !strings.Contains(r.Error, "health") {
		t.Errorf("last deploy: %+v, want a rolled-back deploy of %s saying why", r, e.repo.ref("v3"))
	}
	if n := s.deployCount(t, "rolling", "rolled-back"); n != 1 {
		t.Errorf("cutover_deploys_total{strategy=rolling,result=rolled-back} = %v, want 1", n)
	}
	logDuration(t, "rolling to an image that never passes, health timeout 4s", r, load)
}

// cutover rollback deploys the image that the service's containers
// replaced (their cutover.deploy.previous label), with no failed request.
func TestDeployRollbackCommand(t *testing.T) {
	e := newDeployEnv(t, map[string]map[string]string{"v1": nil, "v2": nil})
	s := e.newService(serviceSpec{Prefix: "back", Image: "v1", Replicas: 2})

	load := s.startLoad()
	if code, _ := e.deploy(s, "v2", "--health-timeout", "30s").wait(); code != 0 {
		t.Fatalf("cutover deploy to v2 exited %d", code)
	}
	s.answers("v2", 10)
	forward := s.last()
	code, out := e.cli(append([]string{"rollback", s.name, "--health-timeout", "30s"}, e.admin()...)...).wait()
	load.finish(t)
	if code != 0 || !strings.Contains(out, s.name+" succeeded: rolling "+e.repo.ref("v1")) {
		t.Fatalf("cutover rollback exited %d, want 0 and a line saying the deploy of %s succeeded", code, e.repo.ref("v1"))
	}
	if load.count("v1") == 0 || load.count("v2") == 0 {
		t.Errorf("the load saw v1 %d and v2 %d times, want both", load.count("v1"), load.count("v2"))
	}

	s.answers("v1", 30)
	news := s.runningImage("v1", 2)
	back := s.last()
	if back.Outcome != "succeeded" || back.Trigger != "rollback" || back.Image != e.repo.ref("v1") || back.Previous != e.repo.ref("v2") {
		t.Errorf("last deploy: %+v, want a succeeded rollback to %s from %s", back, e.repo.ref("v1"), e.repo.ref("v2"))
	}
	deployed(t, news, back)
	list := e.deploysList(s)
	if i, j := strings.Index(list, back.ID), strings.Index(list, forward.ID); i < 0 || j < 0 || i > j {
		t.Errorf("cutover deploys lists the rollback at %d and the deploy at %d, want both, newest first", i, j)
	}
	logDuration(t, "deploy, 2 replicas", forward, load)
	logDuration(t, "rollback, 2 replicas", back, load)
}
