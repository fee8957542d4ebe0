package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// fake is a Docker engine and a proxy in one, recording what the deploy
// does to them. The proxy serves a running container of the service once
// WaitServing is asked, unless its image is bad. It checks the promise of
// zero failed requests: a service must always have a serving container,
// unless the proxy holds its requests.
type fake struct {
	t *testing.T

	mu         sync.Mutex
	ops        []op
	images     map[string]image.InspectResponse // by ID
	tags       map[string]string                // reference → image ID
	registry   map[string]string                // reference → image ID a pull gets
	containers map[string]*fakeContainer
	n          int
	subs       map[*fakeSub]bool
	bad        map[string]bool // image IDs whose containers never serve
	crash      map[string]bool // image IDs whose containers exit at start
	badName    map[string]bool // name prefixes of containers that never serve
	failStop   map[string]bool // container names whose stop fails
	holds      int
	violations []string
	subscribed chan events.Type // the type filter of every Events call
	since      []string         // the Since of every Events call

	// waitHook, when set, runs at the start of WaitServing.
	waitHook func(ctx context.Context, c *fakeContainer) error
}

type fakeContainer struct {
	info    container.InspectResponse
	running bool
	drained bool
	served  bool
}

func (c *fakeContainer) name() string { return dockerName(c.info.Name) }

// op is one thing done to the engine or the proxy.
type op struct {
	kind, name string
	detail     string
}

func newFake(t *testing.T) *fake {
	return &fake{t: t, images: map[string]image.InspectResponse{}, tags: map[string]string{}, registry: map[string]string{},
		containers: map[string]*fakeContainer{}, subs: map[*fakeSub]bool{}, bad: map[string]bool{}, crash: map[string]bool{},
		badName: map[string]bool{}, failStop: map[string]bool{}, subscribed: make(chan events.Type, 100)}
}

// alloc returns a new T for a pointer field whose type has no name here.
func alloc[T any](*T) *T { return new(T) }

// addImage makes an image present under ref, with some image defaults.
func (f *fake) addImage(ref, id string, version string) {
	img := image.InspectResponse{ID: id, RepoTags: []string{ref}}
	img.Config = alloc(img.Config)
	img.Config.Env = []string{"PATH=/usr/bin", "VERSION=" + version}
	img.Config.Cmd = []string{"/app", "serve"}
	img.Config.WorkingDir = "/srv"
	img.Config.Labels = map[string]string{"org.opencontainers.image.version": version}
	img.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	img.Config.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "/app", "check"}, Interval: time.Second}
	img.Config.StopSignal = "SIGTERM"
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[id] = img
	if ref != "" {
		f.tags[ref] = id
	}
}

// oldSpec is the container a test starts with: configured from image app:v1.
type oldSpec struct {
	name, image string
	labels      map[string]string
	ports       network.PortMap
}

// addContainer adds a running, serving container.
func (f *fake) addContainer(s oldSpec) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	imgID := f.tags[s.image]
	img := f.images[imgID]
	f.n++
	id := fmt.Sprintf("%064x", 0xa0000+f.n)
	labels := map[string]string{"org.opencontainers.image.version": img.Config.Labels["org.opencontainers.image.version"]}
	maps.Copy(labels, s.labels)
	stop := 20
	c := &fakeContainer{running: true, served: true, info: container.InspectResponse{
		ID: id, Name: "/" + s.name, Image: imgID,
		Config: &container.Config{
			Hostname: id[:12], User: "app", Image: s.image,
			Env:          append(slices.Clone(img.Config.Env), "DB=postgres://db/app"),
			Cmd:          img.Config.Cmd,
			WorkingDir:   img.Config.WorkingDir,
			ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}, network.MustParsePort("9090/tcp"): {}},
			Healthcheck:  img.Config.Healthcheck,
			Labels:       labels,
			StopSignal:   "SIGINT",
			StopTimeout:  &stop,
		},
		HostConfig: &container.HostConfig{
			Binds:         []string{"data:/data"},
			NetworkMode:   "appnet",
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			Resources:     container.Resources{Memory: 256 << 20},
			PortBindings:  s.ports,
			LogConfig:     container.LogConfig{Type: "json-file"},
		},
		Mounts: []container.MountPoint{
			{Type: "volume", Name: "data", Source: "/var/lib/docker/volumes/data/_data", Destination: "/data", RW: true},
			{Type: "volume", Name: fmt.Sprintf("anon%02d", f.n), Destination: "/cache", RW: true},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"appnet":  {Aliases: []string{"web", id[:12]}, NetworkID: "n1"},
			"backend": {Aliases: []string{"web-backend"}, NetworkID: "n2"},
		}},
	}}
	f.containers[id] = c
	return id
}

func (f *fake) record(kind, name, detail string) {
	f.ops = append(f.ops, op{kind: kind, name: name, detail: detail})
}

// fakeService is the service discovery would give the container.
func fakeService(c *fakeContainer) string {
	l := c.info.Config.Labels
	if s := l[labelService]; s != "" {
		return s
	}
	if l[labelComposeProject] != "" && l[labelComposeService] != "" {
		return l[labelComposeProject] + "-" + l[labelComposeService]
	}
	return c.name()
}

// check records a violation if service has no serving container and no
// hold. Called with mu held.
func (f *fake) check(service, after string) {
	if f.holds > 0 {
		return
	}
	for _, c := range f.containers {
		if c.running && !c.drained && c.served && fakeService(c) == service {
			return
		}
	}
	f.violations = append(f.violations, fmt.Sprintf("service %s has no serving container after %s", service, after))
}

func notFound(what string) error { return fmt.Errorf("no such %s: %w", what, cerrdefs.ErrNotFound) }

// Engine.

func (f *fake) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.tags[ref]
	if !ok {
		id = ref
	}
	img, ok := f.images[id]
	if !ok {
		return client.ImageInspectResult{}, notFound("image: " + ref)
	}
	return client.ImageInspectResult{InspectResponse: img}, nil
}

type fakePull struct {
	io.ReadCloser
	wait func() error
}

func (p fakePull) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(func(jsonstream.Message, error) bool) {}
}
func (p fakePull) Wait(context.Context) error { return p.wait() }

func (f *fake) ImagePull(_ context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("pull", ref, "")
	id, ok := f.registry[ref]
	if !ok {
		return nil, notFound("repository: pull access denied for " + ref)
	}
	return fakePull{ReadCloser: io.NopCloser(strings.NewReader("")), wait: func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.tags[ref] = id
		return nil
	}}, nil
}

func (f *fake) ContainerList(_ context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out client.ContainerListResult
	for _, c := range f.sorted() {
		if !c.running {
			continue
		}
		keep := true
		for l := range opts.Filters["label"] {
			k, v, hasValue := strings.Cut(l, "=")
			got, has := c.info.Config.Labels[k]
			if !has || (hasValue && got != v) {
				keep = false
			}
		}
		if keep {
			img := c.info.Config.Image
			if f.tags[img] != c.info.Image {
				img = c.info.Image // as Docker shows a moved reference
			}
			out.Items = append(out.Items, container.Summary{ID: c.info.ID, Names: []string{c.info.Name}, Image: img,
				ImageID: c.info.Image, Labels: c.info.Config.Labels})
		}
	}
	return out, nil
}

// sorted returns the containers in creation order. Called with mu held.
func (f *fake) sorted() []*fakeContainer {
	cs := slices.Collect(maps.Values(f.containers))
	slices.SortFunc(cs, func(a, b *fakeContainer) int { return strings.Compare(a.info.ID, b.info.ID) })
	return cs
}

func (f *fake) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return client.ContainerInspectResult{}, notFound("container: " + id)
	}
	info := c.info
	info.State = &container.State{Running: c.running}
	return client.ContainerInspectResult{Container: info}, nil
}

func (f *fake) ContainerCreate(_ context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.name() == opts.Name {
			return client.ContainerCreateResult{}, fmt.Errorf("conflict: the container name %q is already in use", opts.Name)
		}
	}
	imgID, ok := f.tags[opts.Config.Image]
	if !ok {
		if _, ok = f.images[opts.Config.Image]; !ok {
			return client.ContainerCreateResult{}, notFound("image: " + opts.Config.Image)
		}
		imgID = opts.Config.Image
	}
	f.n++
	id := fmt.Sprintf("%064x", 0xb0000+f.n)
	nets := map[string]*network.EndpointSettings{}
	if opts.NetworkingConfig != nil {
		for n, ep := range opts.NetworkingConfig.EndpointsConfig {
			nets[n] = ep
		}
	}
	var mounts []container.MountPoint
	for _, b := range opts.HostConfig.Binds {
		parts := strings.Split(b, ":")
		mounts = append(mounts, container.MountPoint{Type: "volume", Name: parts[0], Destination: parts[1], RW: true})
	}
	for _, m := range opts.HostConfig.Mounts {
		mounts = append(mounts, container.MountPoint{Type: m.Type, Name: m.Source, Destination: m.Target, RW: !m.ReadOnly})
	}
	f.containers[id] = &fakeContainer{info: container.InspectResponse{
		ID: id, Name: "/" + opts.Name, Image: imgID, Config: opts.Config, HostConfig: opts.HostConfig, Mounts: mounts,
		NetworkSettings: &container.NetworkSettings{Networks: nets},
	}}
	f.record("create", opts.Name, "")
	return client.ContainerCreateResult{ID: id}, nil
}

func (f *fake) NetworkConnect(_ context.Context, net string, opts client.NetworkConnectOptions) (client.NetworkConnectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[opts.Container]
	if !ok {
		return client.NetworkConnectResult{}, notFound("container")
	}
	c.info.NetworkSettings.Networks[net] = opts.EndpointConfig
	f.record("connect", c.name(), net)
	return client.NetworkConnectResult{}, nil
}

func (f *fake) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return client.ContainerStartResult{}, notFound("container")
	}
	f.record("start", c.name(), "")
	c.running, c.drained = true, false // a restarted container is a new backend
	if f.crash[c.info.Image] {
		// It exits at once; Docker restarts it, if its policy says so,
		// and it exits again.
		c.running = false
		times := 1
		if restarts(c.info.HostConfig) {
			times = crashLoop
		}
		for range times {
			f.publish(events.Message{Type: events.ContainerEventType, Action: events.ActionDie,
				Actor: events.Actor{ID: id, Attributes: map[string]string{"exitCode": "3"}}})
		}
	}
	return client.ContainerStartResult{}, nil
}

func (f *fake) ContainerStop(_ context.Context, id string, opts client.ContainerStopOptions) (client.ContainerStopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return client.ContainerStopResult{}, notFound("container")
	}
	if opts.Timeout != nil || opts.Signal != "" {
		f.t.Errorf("stop %s with timeout/signal %v/%q: want the container's own", c.name(), opts.Timeout, opts.Signal)
	}
	if f.failStop[c.name()] {
		f.record("stop-failed", c.name(), "")
		return client.ContainerStopResult{}, fmt.Errorf("cannot stop container %s: permission denied", c.name())
	}
	f.record("stop", c.name(), "")
	if c.running {
		c.running, c.served = false, false
		f.publish(events.Message{Type: events.ContainerEventType, Action: events.ActionDie,
			Actor: events.Actor{ID: id, Attributes: map[string]string{"exitCode": "0"}}})
		f.check(fakeService(c), "stop "+c.name())
	}
	return client.ContainerStopResult{}, nil
}

func (f *fake) ContainerRemove(_ context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return client.ContainerRemoveResult{}, notFound("container")
	}
	if c.running {
		return client.ContainerRemoveResult{}, fmt.Errorf("conflict: container %s is running: stop it first", c.name())
	}
	detail := ""
	if opts.RemoveVolumes {
		detail = "volumes"
	}
	f.record("remove", c.name(), detail)
	delete(f.containers, id)
	return client.ContainerRemoveResult{}, nil
}

// fakeSub is an event subscription.
type fakeSub struct {
	ctx     context.Context
	filters client.Filters
	ch      chan events.Message
	errs    chan error
}

func (f *fake) Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult {
	errs := make(chan error, 2)
	s := &fakeSub{ctx: ctx, filters: opts.Filters, ch: make(chan events.Message, 100), errs: errs}
	f.mu.Lock()
	f.subs[s] = true
	f.since = append(f.since, opts.Since)
	f.mu.Unlock()
	for typ := range opts.Filters["type"] {
		f.subscribed <- events.Type(typ)
	}
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
		errs <- ctx.Err()
	})
	return client.EventsResult{Messages: s.ch, Err: errs}
}

// breakStreams fails the event streams of type typ.
func (f *fake) breakStreams(typ events.Type) {
	f.mu.Lock()
	var broken []*fakeSub
	for s := range f.subs {
		if s.filters["type"][string(typ)] {
			delete(f.subs, s)
			broken = append(broken, s)
		}
	}
	f.mu.Unlock()
	for _, s := range broken {
		// The engine's client delivers a stream's messages before its
		// error: wait until the reader took those sent (bounded).
		for deadline := time.Now().Add(5 * time.Second); len(s.ch) > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		s.errs <- errors.New("unexpected EOF")
	}
}

// emit publishes m.
func (f *fake) emit(m events.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publish(m)
}

// publish sends m to the matching subscriptions. Called with mu held.
func (f *fake) publish(m events.Message) {
	for s := range f.subs {
		fl := s.filters
		if len(fl["type"]) > 0 && !fl["type"][string(m.Type)] ||
			len(fl["event"]) > 0 && !fl["event"][string(m.Action)] ||
			len(fl["container"]) > 0 && !fl["container"][m.Actor.ID] {
			continue
		}
		select {
		case s.ch <- m:
		default:
			f.t.Errorf("event subscription full")
		}
	}
}
