package deploy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/events"
)

const (
	v4ID = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
	v5ID = "sha256:5555555555555555555555555555555555555555555555555555555555555555"
)

// runDeployer runs d.Run until the test ends.
func runDeployer(t *testing.T, d *Deployer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestTriggerCoalesces(t *testing.T) {
	f, d, l := setup(t, 2, Config{})
	f.addImage("app:v3", v3ID, "3")
	f.addImage("app:v4", v4ID, "4")
	f.addImage("app:v5", v5ID, "5")
	entered, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.waitHook = func(ctx context.Context, c *fakeContainer) error {
		if c.info.Image == v2ID {
			once.Do(func() { close(entered) })
			<-unblock
		}
		return nil
	}
	runDeployer(t, d)
	d.Trigger(Request{Service: "web", Image: "app:v2", Trigger: "webhook"})
	<-entered
	for _, img := range []string{"app:v3", "app:v4", "app:v5"} {
		d.Trigger(Request{Service: "web", Image: img, Trigger: "webhook"})
	}
	close(unblock)
	for _, want := range []string{"app:v2", "app:v5"} {
		m := l.next(t)
		if m["image"] != want || m["outcome"] != Succeeded || m["trigger"] != "webhook" {
			t.Errorf("deploy finished: %v, want %s", m, want)
		}
	}
	h, err := d.History(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Image != "app:v5" || h[1].Image != "app:v2" {
		t.Errorf("history = %+v", h)
	}
	for name, c := range f.running("web") {
		if c.info.Image != v5ID {
			t.Errorf("%s runs %s", name, c.info.Image)
		}
	}
	// Only two deploys: 2 containers each.
	if n := f.count("create"); n != 4 {
		t.Errorf("%d containers created, want 4", n)
	}
}

// autoSetup has web-1 and web-2 (autoredeploy) and api-1 (not) run
// app:latest, which names v1.
func autoSetup(t *testing.T) (*fake, *Deployer, *logs) {
	f, d, l := setup(t, 0, Config{})
	f.addImage("app:latest", v1ID, "1")
	for _, n := range []string{"web-1", "web-2"} {
		f.addContainer(oldSpec{name: n, image: "app:latest", labels: map[string]string{labelService: "web", LabelAutoredeploy: "true"}})
	}
	f.addContainer(oldSpec{name: "api-1", image: "app:latest", labels: map[string]string{labelService: "api"}})
	f.addContainer(oldSpec{name: "off-1", image: "app:latest", labels: map[string]string{labelService: "off", LabelAutoredeploy: "false"}})
	return f, d, l
}

func TestAutoredeploys(t *testing.T) {
	f, d, _ := autoSetup(t)
	ctx := context.Background()
	if reqs := d.autoredeploys(ctx); len(reqs) != 0 {
		t.Errorf("unchanged image: %v", reqs)
	}
	f.addImage("app:other", v2ID, "2") // another tag moves: not ours
	if reqs := d.autoredeploys(ctx); len(reqs) != 0 {
		t.Errorf("another tag: %v", reqs)
	}
	f.addImage("app:latest", v2ID, "2") // the tag moves
	reqs := d.autoredeploys(ctx)
	want := []Request{{Service: "web", Image: "app:latest", Trigger: "autoredeploy"}}
	if !slices.Equal(reqs, want) {
		t.Errorf("autoredeploys = %+v, want %+v", reqs, want)
	}
}

func TestAutoredeployRun(t *testing.T) {
	f, d, l := autoSetup(t)
	runDeployer(t, d)
	if typ := <-f.subscribed; typ != events.ImageEventType {
		t.Fatalf("subscribed to %s events", typ)
	}
	f.addImage("app:latest", v2ID, "2")
	f.emit(events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{ID: v2ID,
		Attributes: map[string]string{"name": "app:latest"}}, TimeNano: 1})
	m := l.next(t)
	if m["message"] != "deploy finished" || m["service"] != "web" || m["image"] != "app:latest" || m["trigger"] != "autoredeploy" || m["outcome"] != Succeeded {
		t.Fatalf("deploy finished: %v", m)
	}
	running := f.running("web")
	if len(running) != 2 {
		t.Errorf("running = %v", running)
	}
	for name, c := range running {
		if c.info.Image != v2ID || c.info.Config.Labels[LabelAutoredeploy] != "true" {
			t.Errorf("%s runs %s", name, c.info.Image)
		}
	}
	if c := f.running("api")["api-1"]; c == nil || c.info.Image != v1ID {
		t.Errorf("api-1 was redeployed")
	}
	// Another event for the same image: the service is up to date now.
	d.Trigger(Request{Service: "web", Image: "app:latest", Trigger: "autoredeploy"})
	if m := l.next(t); m["message"] != "autoredeploy: the service runs the image already" {
		t.Errorf("got %v", m)
	}
}

func TestEventTime(t *testing.T) {
	if got := eventTime(events.Message{Time: 5, TimeNano: 5_000000042}); got != "5.000000042" {
		t.Errorf("eventTime = %s", got)
	}
	if got := eventTime(events.Message{Time: 7}); got != "7" {
		t.Errorf("eventTime = %s", got)
	}
}

func TestImageSessionResumes(t *testing.T) {
	f, d, _ := autoSetup(t)
	since := ""
	type ended struct {
		got bool
		err error
	}
	done := make(chan ended)
	go func() {
		got, err := d.imageSession(context.Background(), &since)
		done <- ended{got, err}
	}()
	<-f.subscribed
	f.emit(events.Message{Type: events.ImageEventType, Action: events.ActionPull, Actor: events.Actor{ID: "app:latest"}, TimeNano: 1_700_000_000_123456789})
	f.breakStreams(events.ImageEventType)
	e := <-done
	if !e.got || e.err == nil || since != "1700000000.123456789" {
		t.Fatalf("session: got %v, err %v, since %q", e.got, e.err, since)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		got, err := d.imageSession(ctx, &since)
		done <- ended{got, err}
	}()
	<-f.subscribed
	cancel()
	if e := <-done; e.got || !errors.Is(e.err, context.Canceled) {
		t.Errorf("second session: %+v", e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.since, []string{"", "1700000000.123456789"}) {
		t.Errorf("since = %q: a new session asks for the events it missed", f.since)
	}
}
