package deploy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestHealthTimeout(t *testing.T) {
	f, d, _ := setup(t, 3, Config{})
	f.bad[v2ID] = true
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", HealthTimeout: 20 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "did not pass its health checks within 20ms") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("err = %v", err)
	}
	if res.Outcome != RolledBack {
		t.Errorf("outcome = %s", res.Outcome)
	}
	nw := newName("web-1", res)
	if f.exists(nw) || f.count("create") != 1 {
		t.Errorf("the new container is left, or more were created: %v", f.ops)
	}
	for i := 1; i <= 3; i++ {
		old := fmt.Sprintf("web-%d", i)
		if f.last("drain", old) >= 0 || f.last("stop", old) >= 0 || f.last("start", old) >= 0 {
			t.Errorf("old container %s was touched", old)
		}
	}
	if len(f.running("web")) != 3 {
		t.Errorf("running = %v", f.running("web"))
	}
}

func TestContainerExits(t *testing.T) {
	for _, policy := range []container.RestartPolicyMode{"", container.RestartPolicyUnlessStopped} {
		t.Run(string(policy), func(t *testing.T) {
			f, d, _ := setup(t, 2, Config{})
			for _, c := range f.containers {
				c.info.HostConfig.RestartPolicy.Name = policy
			}
			f.crash[v2ID] = true
			// An hour of health timeout: the exits end the wait, not the clock.
			res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", HealthTimeout: time.Hour})
			want := "exited (code 3)"
			if policy != "" {
				want = "exited 3 times (last code 3)"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if res.Outcome != RolledBack || f.exists(newName("web-1", res)) || len(f.running("web")) != 2 {
				t.Errorf("outcome %s, running %v", res.Outcome, f.running("web"))
			}
		})
	}
}

func TestRollingLaterBatchFails(t *testing.T) {
	f, d, _ := setup(t, 3, Config{})
	f.badName["web-2-"] = true // the second batch never serves
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", HealthTimeout: 20 * time.Millisecond})
	if err == nil || res.Outcome != RolledBack {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	n1, n2 := newName("web-1", res), newName("web-2", res)
	// Batch 1 switched: web-1 was drained and stopped, not removed.
	f.before("serving", n1, "drain", "web-1")
	f.before("stop", "web-1", "create", n2)
	// Rollback: batch 2's new one goes; web-1 comes back and serves
	// before its replacement is drained.
	f.before("create", n2, "start", "web-1")
	if i, j := f.last("serving", "web-1"), f.index("drain", n1); i < 0 || i > j {
		t.Errorf("web-1 serves again at op %d, its replacement is drained at op %d", i, j)
	}
	f.before("drain", n1, "stop", n1)
	f.before("stop", n1, "remove", n1)
	if f.last("remove", "web-1") >= 0 || f.last("drain", "web-2") >= 0 || f.last("drain", "web-3") >= 0 {
		t.Errorf("old containers removed or drained: %v", f.ops)
	}
	running := f.running("web")
	if len(running) != 3 || running["web-1"] == nil || running["web-2"] == nil || running["web-3"] == nil {
		t.Errorf("running = %v, want web-1..3", running)
	}
	if f.exists(n1) || f.exists(n2) {
		t.Errorf("new containers left")
	}
}

func TestRollingRestoreFails(t *testing.T) {
	f, d, _ := setup(t, 2, Config{})
	f.badName["web-2-"] = true
	// web-1 does not come back either: its replacement must stay.
	f.waitHook = func(ctx context.Context, c *fakeContainer) error {
		if c.name() == "web-1" && c.info.Image == v1ID && !c.served {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", HealthTimeout: 20 * time.Millisecond})
	if err == nil || res.Outcome != Failed || !strings.Contains(err.Error(), "rollback incomplete") {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	running := f.running("web")
	if running[newName("web-1", res)] == nil || running["web-2"] == nil || running["web-1"] != nil {
		t.Errorf("running = %v, want web-1's replacement and web-2", running)
	}
	if !f.exists("web-1") {
		t.Errorf("web-1 was removed; it is kept, stopped")
	}
}

func TestRecreateFails(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	f.bad[v2ID] = true
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: Recreate, HealthTimeout: 20 * time.Millisecond})
	if err == nil || res.Outcome != RolledBack {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	nw := newName("web-1", res)
	f.before("stop", "web-1", "create", nw)
	f.before("remove", nw, "start", "web-1")
	if i, j := f.last("serving", "web-1"), f.index("release", "web"); i < 0 || i > j {
		t.Errorf("web-1 serves again at op %d, the hold ends at op %d", i, j)
	}
	if f.exists(nw) || f.running("web")["web-1"] == nil {
		t.Errorf("running = %v", f.running("web"))
	}
}

func TestRecreateStopFails(t *testing.T) {
	f, d, _ := setup(t, 2, Config{})
	f.failStop["web-2"] = true
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: Recreate})
	if err == nil || res.Outcome != RolledBack || !strings.Contains(err.Error(), "every old one is stopped") {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	if f.count("create") != 0 {
		t.Errorf("new containers created beside a running old one")
	}
	if len(f.running("web")) != 2 {
		t.Errorf("running = %v", f.running("web"))
	}
}

func TestRollingStopFailsAfterCommit(t *testing.T) {
	f, d, _ := setup(t, 2, Config{})
	f.failStop["web-2"] = true
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2"})
	if err != nil || res.Outcome != Succeeded {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	if !strings.Contains(res.Error, "web-2 is drained") || !strings.Contains(res.Error, "docker rm -f web-2") {
		t.Errorf("error = %q, want what to clean up", res.Error)
	}
}

func TestRecreateRestoreFails(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	f.bad[v2ID] = true
	f.waitHook = func(ctx context.Context, c *fakeContainer) error {
		if c.name() == "web-1" {
			<-ctx.Done() // the old one does not come back either
			return ctx.Err()
		}
		return nil
	}
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: Recreate, HealthTimeout: 20 * time.Millisecond})
	if err == nil || res.Outcome != Failed || !strings.Contains(err.Error(), "rollback incomplete: old containers web-1 did not serve again") {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	if f.last("release", "web") < f.last("start", "web-1") || f.exists(newName("web-1", res)) {
		t.Errorf("ops = %v", f.ops)
	}
}
