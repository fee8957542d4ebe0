package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

const (
	v1ID = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	v2ID = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	v3ID = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

// newName is the name a deploy gives the replacement of old.
func newName(old string, res Result) string { return old + "-" + shortID(res.ID) }

func deploy(t *testing.T, d *Deployer, req Request) (Result, []Step, error) {
	t.Helper()
	var steps []Step
	res, err := d.Deploy(context.Background(), req, func(s Step) { steps = append(steps, s) })
	return res, steps, err
}

func TestRollingBatch1(t *testing.T) {
	f, d, _ := setup(t, 3, Config{})
	res, steps, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Trigger: "cli"})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if res.Outcome != Succeeded || res.Strategy != Rolling || res.Image != "app:v2" || res.Previous != "app:v1" || res.Error != "" {
		t.Errorf("result = %+v", res)
	}
	for i := 1; i <= 3; i++ {
		old, nw := fmt.Sprintf("web-%d", i), newName(fmt.Sprintf("web-%d", i), res)
		f.before("start", nw, "serving", nw)
		f.before("serving", nw, "drain", old)
		f.before("drain", old, "stop", old)
		f.before("stop", old, "remove", old)
		if i > 1 {
			// Batches of one: the next new container comes after the
			// previous old one is gone from rotation.
			f.before("stop", fmt.Sprintf("web-%d", i-1), "create", nw)
		}
		if f.exists(old) {
			t.Errorf("old container %s is left", old)
		}
	}
	// Old containers are removed only once every batch serves.
	f.before("serving", newName("web-3", res), "remove", "web-1")
	running := f.running("web")
	if len(running) != 3 {
		t.Fatalf("running = %v, want 3 new containers", running)
	}
	for name, c := range running {
		if c.info.Image != v2ID || !strings.HasSuffix(name, shortID(res.ID)) {
			t.Errorf("container %s runs %s", name, c.info.Image)
		}
	}
	phases := map[string]int{}
	for _, s := range steps {
		phases[s.Phase]++
		if s.ID != res.ID || s.Service != "web" || s.At.IsZero() {
			t.Errorf("step %+v", s)
		}
	}
	for _, p := range []string{"pull", "create", "start", "wait", "serving", "drain", "stop", "remove", "done"} {
		if phases[p] == 0 {
			t.Errorf("no %s step in %v", p, steps)
		}
	}
	if last := steps[len(steps)-1]; last.Phase != "done" {
		t.Errorf("last step = %+v", last)
	}
}

func TestRollingBatch2(t *testing.T) {
	f, d, _ := setup(t, 3, Config{})
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	n1, n2, n3 := newName("web-1", res), newName("web-2", res), newName("web-3", res)
	for _, nw := range []string{n1, n2} {
		for _, old := range []string{"web-1", "web-2"} {
			f.before("serving", nw, "drain", old)
		}
	}
	f.before("stop", "web-1", "create", n3)
	f.before("stop", "web-2", "create", n3)
	f.before("serving", n3, "drain", "web-3")
	f.before("drain", "web-3", "stop", "web-3")
	if f.exists("web-3") || len(f.running("web")) != 3 {
		t.Errorf("running = %v", f.running("web"))
	}
}

func TestBlueGreen(t *testing.T) {
	f, d, _ := setup(t, 3, Config{})
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: BlueGreen, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != BlueGreen {
		t.Errorf("strategy = %s", res.Strategy)
	}
	for i := 1; i <= 3; i++ {
		for j := 1; j <= 3; j++ {
			f.before("serving", newName(fmt.Sprintf("web-%d", i), res), "drain", fmt.Sprintf("web-%d", j))
		}
	}
	if len(f.running("web")) != 3 || f.count("remove") != 3 {
		t.Errorf("running = %v, removes = %d", f.running("web"), f.count("remove"))
	}
}

func TestRecreate(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: Recreate, MaxPause: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	nw := newName("web-1", res)
	f.before("hold", "web", "drain", "web-1")
	f.before("drain", "web-1", "stop", "web-1")
	f.before("stop", "web-1", "create", nw)
	f.before("serving", nw, "release", "web")
	f.before("release", "web", "remove", "web-1")
	if f.ops[f.index("hold", "web")].detail != "7s" {
		t.Errorf("hold = %+v, want 7s", f.ops[f.index("hold", "web")])
	}
	c := f.running("web")[nw]
	if c == nil {
		t.Fatalf("new container %s is not running", nw)
	}
	if !slices.Contains(c.info.HostConfig.Binds, "data:/data") {
		t.Errorf("binds = %v, want the named volume data", c.info.HostConfig.Binds)
	}
	if !slices.ContainsFunc(c.info.Mounts, func(m container.MountPoint) bool { return m.Name == "anon01" && m.Destination == "/cache" }) {
		t.Errorf("mounts = %+v, want the old anonymous volume at /cache", c.info.Mounts)
	}
}

func TestCopiedConfig(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.running("web")[newName("web-1", res)]
	cfg, hc := c.info.Config, c.info.HostConfig
	if cfg.Image != "app:v2" || cfg.User != "app" || cfg.StopSignal != "SIGINT" || cfg.StopTimeout == nil || *cfg.StopTimeout != 20 {
		t.Errorf("config = %+v", cfg)
	}
	if !slices.Equal(cfg.Env, []string{"DB=postgres://db/app"}) {
		t.Errorf("env = %v, want the container's own only (the image's come from the new image)", cfg.Env)
	}
	if cfg.Cmd != nil || cfg.WorkingDir != "" || cfg.Healthcheck != nil || cfg.Hostname != "" {
		t.Errorf("cmd %v, workdir %q, health %v, hostname %q: the image defaults and the hostname are not copied", cfg.Cmd, cfg.WorkingDir, cfg.Healthcheck, cfg.Hostname)
	}
	if _, ok := cfg.ExposedPorts[network.MustParsePort("9090/tcp")]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("exposed = %v, want 9090/tcp (8080/tcp is the image's)", cfg.ExposedPorts)
	}
	want := map[string]string{labelService: "web", "cutover.host": "web.test", LabelID: res.ID, LabelTime: "2026-05-01T12:00:01Z",
		LabelImage: "app:v2", LabelPrevious: "app:v1", LabelPreviousID: v1ID}
	for k, v := range want {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	if _, ok := cfg.Labels["org.opencontainers.image.version"]; ok {
		t.Errorf("the old image's label was copied")
	}
	if hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped || hc.Memory != 256<<20 || hc.NetworkMode != "appnet" || hc.LogConfig.Type != "json-file" {
		t.Errorf("host config = %+v", hc)
	}
	nets := c.info.NetworkSettings.Networks
	if len(nets) != 2 || !slices.Equal(nets["appnet"].Aliases, []string{"web"}) || !slices.Equal(nets["backend"].Aliases, []string{"web-backend"}) {
		t.Errorf("networks = %v %v", nets["appnet"], nets["backend"])
	}
	f.before("connect", newName("web-1", res), "start", newName("web-1", res))
}

func TestImageMissing(t *testing.T) {
	f, d, _ := setup(t, 3, Config{})
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v9"})
	if err == nil || !strings.Contains(err.Error(), "app:v9 is not present and could not be pulled") || !strings.Contains(err.Error(), "no container was touched") {
		t.Fatalf("err = %v", err)
	}
	if res.Outcome != Failed || res.Error != err.Error() {
		t.Errorf("result = %+v", res)
	}
	for _, kind := range []string{"create", "start", "drain", "stop", "remove", "hold"} {
		if n := f.count(kind); n != 0 {
			t.Errorf("%d %s ops: a missing image must not touch any container", n, kind)
		}
	}
	if f.count("pull") != 1 || len(f.running("web")) != 3 {
		t.Errorf("pulls = %d, running = %v", f.count("pull"), f.running("web"))
	}
}

func TestImagePulled(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	f.addImage("", v3ID, "3")
	f.registry["app:v3"] = v3ID
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v3"})
	if err != nil {
		t.Fatal(err)
	}
	f.before("pull", "app:v3", "create", newName("web-1", res))
	if c := f.running("web")[newName("web-1", res)]; c == nil || c.info.Image != v3ID {
		t.Errorf("running = %v", f.running("web"))
	}
}

func TestPortConflict(t *testing.T) {
	f, d, _ := setup(t, 0, Config{})
	f.addContainer(oldSpec{name: "web-1", image: "app:v1", labels: map[string]string{labelService: "web"},
		ports: network.PortMap{network.MustParsePort("8080/tcp"): {{HostPort: "80"}}}})
	_, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2"})
	if err == nil || !strings.Contains(err.Error(), "publishes host port 80") || !strings.Contains(err.Error(), "--strategy recreate") {
		t.Fatalf("err = %v", err)
	}
	if f.count("create")+f.count("drain")+f.count("stop")+f.count("pull") != 0 {
		t.Errorf("ops = %v", f.ops)
	}
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: Recreate})
	if err != nil {
		t.Fatalf("recreate: %v", err)
	}
	c := f.running("web")[newName("web-1", res)]
	if c == nil || c.info.HostConfig.PortBindings[network.MustParsePort("8080/tcp")][0].HostPort != "80" {
		t.Errorf("recreate should keep the published port")
	}
}

func TestStrategyLabel(t *testing.T) {
	f, d, _ := setup(t, 0, Config{})
	f.addContainer(oldSpec{name: "db", image: "app:v1", labels: map[string]string{LabelStrategy: "recreate"}})
	res, _, err := deploy(t, d, Request{Service: "db", Image: "app:v2"})
	if err != nil || res.Strategy != Recreate || f.count("hold") != 1 {
		t.Fatalf("strategy %s, err %v", res.Strategy, err)
	}
	// db is named by its container name: the copy is pinned to it.
	if c := f.running("db")[newName("db", res)]; c == nil || c.info.Config.Labels[labelService] != "db" {
		t.Errorf("running = %v", f.running("db"))
	}
	f.addContainer(oldSpec{name: "api", image: "app:v1", labels: map[string]string{LabelStrategy: "canary"}})
	_, _, err = deploy(t, d, Request{Service: "api", Image: "app:v2"})
	if err == nil || !strings.Contains(err.Error(), `cutover.deploy.strategy="canary"`) {
		t.Errorf("err = %v", err)
	}
}

func TestNoContainers(t *testing.T) {
	_, d, _ := setup(t, 0, Config{})
	res, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2"})
	if err == nil || !strings.HasPrefix(err.Error(), "service web has no running container to replace") || res.Outcome != Failed {
		t.Errorf("err = %v, result %+v", err, res)
	}
	_, _, err = deploy(t, d, Request{Service: "web", Image: "app:v2", Strategy: "canary", Batch: -1})
	if err == nil || !strings.Contains(err.Error(), "strategy") || !strings.Contains(err.Error(), "batch -1") {
		t.Errorf("err = %v", err)
	}
}

func TestBusy(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	entered, unblock := make(chan struct{}), make(chan struct{})
	f.waitHook = func(ctx context.Context, c *fakeContainer) error {
		if c.info.Image == v2ID {
			close(entered)
			<-unblock
		}
		return nil
	}
	done := make(chan error)
	go func() {
		_, err := d.Deploy(context.Background(), Request{Service: "web", Image: "app:v2"}, nil)
		done <- err
	}()
	<-entered
	_, err := d.Deploy(context.Background(), Request{Service: "web", Image: "app:v2"}, nil)
	if !errors.Is(err, ErrBusy) || !strings.HasPrefix(err.Error(), "service web: a deploy is already running (id ") || !strings.Contains(err.Error(), "started 2026-05-01T12:00:01Z") {
		t.Errorf("err = %v", err)
	}
	if _, err := d.Rollback(context.Background(), Request{Service: "web"}, nil); !errors.Is(err, ErrBusy) {
		t.Errorf("rollback err = %v", err)
	}
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The slot is free again.
	if _, err := d.Deploy(context.Background(), Request{Service: "web", Image: "app:v1"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCancelRevertsAndEnds(t *testing.T) {
	f, d, _ := setup(t, 2, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	f.waitHook = func(wctx context.Context, c *fakeContainer) error {
		if c.info.Image == v2ID {
			cancel() // the caller gives up while the new container boots
			<-wctx.Done()
			return wctx.Err()
		}
		return nil
	}
	res, err := d.Deploy(ctx, Request{Service: "web", Image: "app:v2"}, nil)
	if err == nil || !strings.Contains(err.Error(), "deploy cancelled") || res.Outcome != RolledBack {
		t.Fatalf("outcome %s, err %v", res.Outcome, err)
	}
	if len(f.running("web")) != 2 || f.count("create") != 1 || f.count("remove") != 1 {
		t.Errorf("running %v, ops %v", f.running("web"), f.ops)
	}
}

func TestRollback(t *testing.T) {
	f, d, _ := setup(t, 2, Config{})
	if _, err := d.Rollback(context.Background(), Request{Service: "web"}, nil); err == nil || !strings.Contains(err.Error(), "no previous image") {
		t.Fatalf("rollback of a service never deployed: %v", err)
	}
	if _, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2"}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Rollback(context.Background(), Request{Service: "web"}, nil)
	if err != nil || res.Image != "app:v1" || res.Previous != "app:v2" || res.Trigger != "rollback" {
		t.Fatalf("rollback: %+v, %v", res, err)
	}
	for name, c := range f.running("web") {
		if c.info.Image != v1ID || c.info.Config.Labels[LabelPrevious] != "app:v2" {
			t.Errorf("%s runs %s", name, c.info.Image)
		}
		// web-1-<first deploy> became web-1-<rollback>: one suffix only.
		if !strings.HasPrefix(name, "web-") || strings.Count(name, "-") != 2 {
			t.Errorf("name %s", name)
		}
	}
	// The tag moved: rollback goes to the exact image.
	if _, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2"}); err != nil {
		t.Fatal(err)
	}
	f.addImage("app:v1", v3ID, "3")
	res, err = d.Rollback(context.Background(), Request{Service: "web"}, nil)
	if err != nil || res.Image != v1ID {
		t.Fatalf("rollback after the tag moved: %+v, %v", res, err)
	}
}

func TestRedeploySameReference(t *testing.T) {
	f, d, _ := setup(t, 1, Config{})
	f.registry["app:v1"] = v3ID
	f.addImage("", v3ID, "3")
	res, _, err := deploy(t, d, Request{Service: "web", Pull: true})
	if err != nil || res.Image != "app:v1" {
		t.Fatalf("%+v %v", res, err)
	}
	if c := f.running("web")[newName("web-1", res)]; c == nil || c.info.Image != v3ID {
		t.Errorf("running = %v, want the pulled image", f.running("web"))
	}
}

func TestComposeNames(t *testing.T) {
	f, d, _ := setup(t, 0, Config{})
	f.addContainer(oldSpec{name: "proj-web-1", image: "app:v1", labels: map[string]string{labelComposeProject: "proj", labelComposeService: "web"}})
	res, _, err := deploy(t, d, Request{Service: "proj-web", Image: "app:v2"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.running("proj-web")["proj-web-1-"+shortID(res.ID)]
	if c == nil {
		t.Fatalf("running = %v", f.running("proj-web"))
	}
	if _, pinned := c.info.Config.Labels[labelService]; pinned {
		t.Errorf("a Compose service needs no pin")
	}
	// Volumes in both forms are mounted; none twice.
	seen := map[string]bool{}
	for _, m := range c.info.Mounts {
		if seen[m.Destination] {
			t.Errorf("%s mounted twice", m.Destination)
		}
		seen[m.Destination] = true
	}
	if !seen["/data"] || !seen["/cache"] {
		t.Errorf("mounts = %+v", c.info.Mounts)
	}
}

func TestWaitReturnsWhenNoDeployRuns(t *testing.T) {
	d := &Deployer{running: map[string]slot{"web": {id: "x"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if err := d.Wait(ctx); err == nil {
		t.Fatal("Wait returned while a deploy runs")
	}
	d.end("web", nil)
	if err := d.Wait(context.Background()); err != nil {
		t.Fatalf("Wait with no deploy: %v", err)
	}
}
