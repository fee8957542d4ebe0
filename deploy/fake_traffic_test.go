package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Traffic.

func (f *fake) Containers(service string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, c := range f.sorted() {
		if c.running && !c.drained && fakeService(c) == service {
			ids = append(ids, c.info.ID)
		}
	}
	return ids
}

func (f *fake) WaitServing(ctx context.Context, service, id string) error {
	f.mu.Lock()
	c := f.containers[id]
	hook := f.waitHook
	f.mu.Unlock()
	if c == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	if hook != nil {
		if err := hook(ctx, c); err != nil {
			return err
		}
	}
	f.mu.Lock()
	ok := c.running && !f.bad[c.info.Image] && fakeService(c) == service
	for prefix := range f.badName {
		ok = ok && !strings.HasPrefix(c.name(), prefix)
	}
	if ok {
		c.served = true
		f.record("serving", c.name(), "")
	}
	f.mu.Unlock()
	if !ok {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fake) Drain(ctx context.Context, service, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	if c == nil {
		return 0
	}
	if _, ok := ctx.Deadline(); !ok {
		f.t.Errorf("drain %s without a deadline", c.name())
	}
	f.record("drain", c.name(), "")
	c.drained = true
	f.check(service, "drain "+c.name())
	return 0
}

func (f *fake) Hold(service string, max time.Duration) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("hold", service, max.String())
	f.holds++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.record("release", service, "")
		f.holds--
	}
}

// Helpers for tests.

// index returns the position of the first op of kind on name, or fails.
func (f *fake) index(kind, name string) int {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.ops {
		if o.kind == kind && o.name == name {
			return i
		}
	}
	f.t.Fatalf("no %s of %s in %v", kind, name, f.ops)
	return -1
}

// last returns the position of the last op of kind on name, or -1.
func (f *fake) last(kind, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.ops) - 1; i >= 0; i-- {
		if f.ops[i].kind == kind && f.ops[i].name == name {
			return i
		}
	}
	return -1
}

// before fails unless op a happened before op b (first occurrences).
func (f *fake) before(aKind, aName, bKind, bName string) {
	f.t.Helper()
	if a, b := f.index(aKind, aName), f.index(bKind, bName); a >= b {
		f.t.Errorf("%s %s (op %d) should come before %s %s (op %d)", aKind, aName, a, bKind, bName, b)
	}
}

// count counts the ops of kind.
func (f *fake) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.ops {
		if o.kind == kind {
			n++
		}
	}
	return n
}

// running returns the running containers of service, by name.
func (f *fake) running(service string) map[string]*fakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*fakeContainer{}
	for _, c := range f.containers {
		if c.running && fakeService(c) == service {
			out[c.name()] = c
		}
	}
	return out
}

func (f *fake) exists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.name() == name {
			return true
		}
	}
	return false
}

// verify fails on violations of the zero-failed-requests promise.
func (f *fake) verify() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violations {
		f.t.Error(v)
	}
	for _, o := range f.ops {
		if o.kind == "remove" && o.detail == "volumes" {
			f.t.Errorf("container %s removed with its volumes", o.name)
		}
	}
}

// logs collects the log lines that say a background deploy ended.
type logs struct {
	ended chan map[string]any
}

// endings are the messages of those lines.
var endings = []string{"deploy finished", "autoredeploy: the service runs the image already"}

func (l *logs) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err == nil {
		if msg, _ := m["message"].(string); slices.Contains(endings, msg) {
			select {
			case l.ended <- m:
			default: // a test that does not read them
			}
		}
	}
	return len(p), nil
}

// next returns the next such line, failing after a long guard (a hang is
// a bug; nothing waits for time to pass).
func (l *logs) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-l.ended:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no deploy ended")
		return nil
	}
}

// clock is a fake clock that moves one second per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// setup returns a fake with images app:v1 and app:v2 and n containers
// web-1..web-n of service web running app:v1, and a Deployer over it.
func setup(t *testing.T, n int, cfg Config) (*fake, *Deployer, *logs) {
	t.Helper()
	f := newFake(t)
	f.addImage("app:v1", "sha256:1111111111111111111111111111111111111111111111111111111111111111", "1")
	f.addImage("app:v2", "sha256:2222222222222222222222222222222222222222222222222222222222222222", "2")
	for i := 1; i <= n; i++ {
		f.addContainer(oldSpec{name: fmt.Sprintf("web-%d", i), image: "app:v1", labels: map[string]string{labelService: "web", "cutover.host": "web.test"}})
	}
	l := &logs{ended: make(chan map[string]any, 100)}
	cfg.Engine, cfg.Traffic = f, f
	cfg.Logger = zerolog.New(l)
	if cfg.Now == nil {
		c := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
		cfg.Now = c.now
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.verify)
	return f, d, l
}
