package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// A service labelled cutover.autoredeploy=true that runs app:live is
// redeployed when live is re-tagged to another image (a Docker image tag
// event), with no failed request. cutover rollback then goes back to the
// image live named before, although the tag has moved. A webhook with a
// wrong token is refused with 401 and changes nothing; with the right one
// it is accepted (202) and deploys the pushed tag, pulled from a registry
// on 127.0.0.1.
func TestDeployAutoredeployAndWebhook(t *testing.T) {
	hookToken := "hook-" + suffix()
	e := newDeployEnv(t, map[string]map[string]string{"v1": nil, "v2": nil}, "--webhook-token", hookToken)
	e.repo.tag("v1", "live")
	s := e.newService(serviceSpec{Prefix: "auto", Image: "live", Replicas: 2,
		Labels: map[string]string{"cutover.autoredeploy": "true"}})
	s.answers("v1", 10)
	load := s.startLoad()

	// Autoredeploy: the tag moves, the containers follow.
	since := time.Now()
	e.repo.tag("v2", "live")
	auto := s.waitDeploy("autoredeploy", since, 60*time.Second)
	if auto.Outcome != "succeeded" || auto.Image != e.repo.ref("live") {
		t.Fatalf("autoredeploy: %+v, want a succeeded deploy of %s", auto, e.repo.ref("live"))
	}
	news := s.waitImage("v2", 2, 10*time.Second)
	deployed(t, news, auto)
	s.answers("v2", 20)
	if list := e.deploysList(s); !strings.Contains(list, auto.ID) || !strings.Contains(list, e.repo.ref("live")) {
		t.Errorf("cutover deploys does not list the autoredeploy %s of %s", auto.ID, e.repo.ref("live"))
	}
	t.Logf("autoredeploy %s: %s, from the re-tag to its end %s", auto.ID, auto.Duration.Round(time.Millisecond),
		auto.Started.Add(auto.Duration).Sub(since).Round(time.Millisecond))

	// Rollback: live names v2 now, so the image it named before, v1, is
	// deployed by its ID.
	code, _ := e.cli(append([]string{"rollback", s.name}, e.admin()...)...).wait()
	if code != 0 {
		t.Fatalf("cutover rollback exited %d", code)
	}
	back := s.last()
	if back.Outcome != "succeeded" || back.Image != e.repo.id("v1") {
		t.Errorf("rollback after the tag moved: %+v, want a succeeded deploy of the image live named before, %s", back, e.repo.id("v1"))
	}
	news = s.waitImage("v1", 2, 10*time.Second)
	deployed(t, news, back)
	s.answers("v1", 20)

	// v2 is pushed to a registry, which calls the webhook.
	reg := newRegistry(t)
	pushed := reg.host() + "/" + e.repo.name
	reg.push(t, e.repo.ref("v2"), e.repo.name, "v2")
	e.repo.track(pushed + ":v2") // pulled by the deploy; removed at the end
	push := fmt.Sprintf(`{"push_data": {"tag": "v2"}, "repository": {"repo_name": %q}}`, pushed)

	// A webhook with a wrong token: 401, and nothing happens.
	if code, body := s.webhook("wrong-"+hookToken, push); code != http.StatusUnauthorized {
		t.Errorf("webhook with a wrong token: %d %s, want 401", code, body)
	}
	time.Sleep(1500 * time.Millisecond) // a window in which a deploy would start, not a wait for a condition
	if after := s.runningImage("v1", 2); !slices.Equal(boxIDs(after), boxIDs(news)) {
		t.Errorf("after a refused webhook the containers are %v, want them unchanged: %v", after, news)
	}
	queued := func(l map[string]any) bool {
		return l["service"] == s.name && l["trigger"] == "webhook"
	}
	if e.in.hasLog(queued) || reg.pulled(e.repo.name) != 0 {
		t.Errorf("a refused webhook queued a deploy, or pulled the image (%d times)", reg.pulled(e.repo.name))
	}

	// The right token: 202, and the pushed tag is deployed.
	since = time.Now()
	code, body := s.webhook(hookToken, push)
	var ack struct{ Service, Image, Status string }
	if err := json.Unmarshal([]byte(body), &ack); code != http.StatusAccepted || err != nil ||
		ack.Service != s.name || ack.Image != pushed+":v2" || ack.Status != "queued" {
		t.Fatalf("webhook with the right token: %d %s, want 202 queuing %s", code, body, pushed+":v2")
	}
	hook := s.waitDeploy("webhook", since, 60*time.Second)
	load.finish(t)
	if hook.Outcome != "succeeded" || hook.Image != pushed+":v2" || hook.Previous != e.repo.id("v1") {
		t.Fatalf("webhook deploy: %+v, want a succeeded deploy of %s replacing %s", hook, pushed+":v2", e.repo.id("v1"))
	}
	if n := reg.pulled(e.repo.name); n == 0 {
		t.Errorf("the webhook deploy did not ask the registry for %s:v2", pushed)
	}
	deployed(t, s.waitImage("v2", 2, 10*time.Second), hook)
	s.answers("v2", 20)
	if load.count("v1") == 0 || load.count("v2") == 0 {
		t.Errorf("the load saw v1 %d and v2 %d times, want both", load.count("v1"), load.count("v2"))
	}
	logDuration(t, "autoredeploy, 2 replicas", auto, load)
	logDuration(t, "rollback to an image ID, 2 replicas", back, load)
	logDuration(t, "webhook, 2 replicas", hook, load)
}

// webhook posts payload to the service's deploy hook with token and
// returns the status and body.
func (s *appService) webhook(token, payload string) (int, string) {
	s.e.t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	res, err := cl.Post(s.e.in.admin+"/hooks/deploy/"+s.name+"?token="+token, "application/json", strings.NewReader(payload))
	if err != nil {
		s.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.e.t.Fatal(err)
	}
	return res.StatusCode, strings.TrimSpace(string(b))
}
