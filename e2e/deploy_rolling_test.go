package e2e

import (
	"slices"
	"strings"
	"testing"
)

// A rolling deploy of three replicas from v1 to v2, one at a time, under a
// steady load, fails no request; afterwards every answer comes from v2,
// and no v1 container is left, running or stopped.
func TestDeployRolling(t *testing.T) {
	e := newDeployEnv(t, map[string]map[string]string{"v1": nil, "v2": nil})
	s := e.newService(serviceSpec{Prefix: "roll", Image: "v1", Replicas: 3})
	s.runningImage("v1", 3)
	s.answers("v1", 10)

	load := s.startLoad()
	c := e.deploy(s, "v2", "--strategy", "rolling", "--health-timeout", "30s", "--drain-timeout", "10s")
	code, out := c.wait()
	load.finish(t)
	if code != 0 || !strings.Contains(out, s.name+" succeeded: rolling "+e.repo.ref("v2")) {
		t.Fatalf("cutover deploy exited %d, want 0 and a line saying it succeeded", code)
	}
	if load.count("v1") == 0 || load.count("v2") == 0 {
		t.Errorf("the load saw v1 %d and v2 %d times, want both: it did not span the deploy", load.count("v1"), load.count("v2"))
	}
	want := []string{"serving", "drain", "serving", "drain", "serving", "drain"}
	if got := c.switches(); !slices.Equal(got, want) {
		t.Errorf("steps that switch traffic: %v, want %v (one new container serves before each old one drains)", got, want)
	}

	s.answers("v2", 30)
	news := s.runningImage("v2", 3)
	r := s.last()
	if r.Outcome != "succeeded" || r.Strategy != "rolling" || r.Image != e.repo.ref("v2") || r.Previous != e.repo.ref("v1") || r.Trigger != "cli" {
		t.Errorf("last deploy: %+v, want a succeeded rolling cli deploy of %s replacing %s", r, e.repo.ref("v2"), e.repo.ref("v1"))
	}
	deployed(t, news, r)
	if n := s.deployCount(t, "rolling", "succeeded"); n != 1 {
		t.Errorf("cutover_deploys_total{strategy=rolling,result=succeeded} = %v, want 1", n)
	}
	if list := e.deploysList(s); !strings.Contains(list, r.ID) || !strings.Contains(list, "succeeded") {
		t.Errorf("cutover deploys does not list deploy %s as succeeded", r.ID)
	}
	logDuration(t, "rolling, 3 replicas, batch 1", r, load)
}

// A blue-green deploy, chosen by the service's cutover.deploy.strategy
// label, starts all new containers, switches when every one serves, then
// drains all old ones; under a steady load it fails no request.
func TestDeployBlueGreen(t *testing.T) {
	e := newDeployEnv(t, map[string]map[string]string{"v1": nil, "v2": nil})
	s := e.newService(serviceSpec{Prefix: "bg", Image: "v1", Replicas: 3,
		Labels: map[string]string{"cutover.deploy.strategy": "blue-green"}})
	s.answers("v1", 10)

	load := s.startLoad()
	c := e.deploy(s, "v2", "--health-timeout", "30s", "--drain-timeout", "10s")
	code, out := c.wait()
	load.finish(t)
	if code != 0 || !strings.Contains(out, s.name+" succeeded: blue-green "+e.repo.ref("v2")) {
		t.Fatalf("cutover deploy exited %d, want 0 and a line saying the blue-green deploy succeeded", code)
	}
	if load.count("v1") == 0 || load.count("v2") == 0 {
		t.Errorf("the load saw v1 %d and v2 %d times, want both: it did not span the deploy", load.count("v1"), load.count("v2"))
	}
	want := []string{"serving", "serving", "serving", "drain", "drain", "drain"}
	if got := c.switches(); !slices.Equal(got, want) {
		t.Errorf("steps that switch traffic: %v, want %v (every new container serves before any old one drains)", got, want)
	}

	s.answers("v2", 30)
	news := s.runningImage("v2", 3)
	r := s.last()
	if r.Outcome != "succeeded" || r.Strategy != "blue-green" {
		t.Errorf("last deploy: %+v, want a succeeded blue-green deploy", r)
	}
	deployed(t, news, r)
	if n := s.deployCount(t, "blue-green", "succeeded"); n != 1 {
		t.Errorf("cutover_deploys_total{strategy=blue-green,result=succeeded} = %v, want 1", n)
	}
	logDuration(t, "blue-green, 3 replicas", r, load)
}
