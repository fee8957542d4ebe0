package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/discovery"
)

// Defaults of Config.
const (
	DefaultResync     = 30 * time.Second
	DefaultMaxBackoff = 5 * time.Second
	minBackoff        = 100 * time.Millisecond
)

// Config configures a Provider. The zero value is usable.
type Config struct {
	// Host is the engine's address, e.g. unix:///var/run/docker.sock. Empty
	// means the environment (DOCKER_HOST, else the default socket).
	Host string
	// ExposeByDefault routes every container that does not say
	// cutover.enable=false.
	ExposeByDefault bool
	// CompatNginxProxy reads VIRTUAL_HOST, VIRTUAL_PORT and VIRTUAL_PATH.
	CompatNginxProxy bool
	// Resync is the period of full resyncs, the safety net for missed
	// events. Zero means DefaultResync.
	Resync time.Duration
	// MaxBackoff bounds the wait between reconnection attempts. Zero means
	// DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Logger receives connection steps. The zero value logs nothing.
	Logger zerolog.Logger
}

// Provider reports the containers of one Docker engine.
type Provider struct {
	cfg  Config
	cli  *client.Client
	log  zerolog.Logger
	host string

	// Owned by Run's goroutine.
	containers map[string]*container
	stopping   map[string]string // container ID → StartedAt when a stop signal was seen
	meta       map[string]containerMeta
	seen       map[string]string // container ID → list fingerprint at the last resync
	tombs      map[string]tomb   // removed containers, kept for their routes
	self       self
}

// New returns a Provider. It does not contact the engine; Ping does.
func New(cfg Config) (*Provider, error) {
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Resync < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("docker: resync and backoff must be positive durations")
	}
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Provider{cfg: cfg, cli: cli, log: cfg.Logger, host: cli.DaemonHost(),
		containers: map[string]*container{}, stopping: map[string]string{}, meta: map[string]containerMeta{}, seen: map[string]string{}, tombs: map[string]tomb{}}, nil
}

// Name is "docker".
func (p *Provider) Name() string { return "docker" }

// Host is the engine address in use.
func (p *Provider) Host() string { return p.host }

// Ping checks that the engine answers and negotiates the API version.
func (p *Provider) Ping(ctx context.Context) (string, error) {
	res, err := p.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return "", fmt.Errorf("docker engine at %s does not answer: %w", p.host, err)
	}
	return res.APIVersion, nil
}

// Close releases the client's connections.
func (p *Provider) Close() error { return p.cli.Close() }

// Run reports snapshots until ctx ends. Lost connections are retried with
// backoff; the last snapshot stays in effect meanwhile.
func (p *Provider) Run(ctx context.Context, sink discovery.Sink) error {
	backoff := minBackoff
	var lostAt time.Time
	for {
		established, err := p.session(ctx, sink, &lostAt)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if established {
			backoff = minBackoff
		}
		if lostAt.IsZero() {
			lostAt = time.Now()
			p.log.Warn().Err(err).Str("docker", p.host).
				Msg("docker connection lost: serving the last known routes, reconnecting")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, p.cfg.MaxBackoff)
	}
}

// settle is how long a session must last, or how long until its first
// event, before it counts as established: only then is the backoff reset
// and a reconnection logged, so an engine that accepts the list but not
// the event stream is not hammered nor logged about in a loop.
const settle = time.Second

// tombstoneTTL is how long a removed container keeps its routes (without
// endpoints, answering 503) when no running container serves its
// service: Compose removes a container before it creates its successor.
const tombstoneTTL = time.Minute

// session subscribes to events, resyncs, and follows events until the
// stream fails. It reports whether the session got established.
func (p *Provider) session(ctx context.Context, sink discovery.Sink, lostAt *time.Time) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := p.cli.Events(ctx, client.EventsListOptions{Filters: eventFilters()})
	if err := p.resync(ctx); err != nil {
		return false, err
	}
	p.report(sink)
	established := false
	establish := func() {
		if established {
			return
		}
		established = true
		if !lostAt.IsZero() {
			p.log.Info().Str("docker", p.host).Dur("outage", time.Since(*lostAt)).Msg("docker reconnected and resynced")
			*lostAt = time.Time{}
		}
	}
	settled := time.NewTimer(settle)
	defer settled.Stop()
	tick := time.NewTicker(p.cfg.Resync)
	defer tick.Stop()
	sweep := time.NewTicker(tombstoneTTL / 12)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return established, ctx.Err()
		case err := <-stream.Err:
			if err == nil {
				err = errors.New("event stream ended")
			}
			return established, fmt.Errorf("docker events: %w", err)
		case <-settled.C:
			establish()
		case msg := <-stream.Messages:
			establish()
			if p.handle(ctx, msg) {
				p.report(sink)
			}
		case <-tick.C:
			if err := p.resync(ctx); err != nil {
				return established, err
			}
			p.report(sink)
		case <-sweep.C:
			if p.sweep(time.Now()) {
				p.report(sink)
			}
		}
	}
}

// bury keeps a removed container as a stopped one for tombstoneTTL.
func (p *Provider) bury(c *container) {
	dead := *c
	dead.Running, dead.Stopping = false, false
	p.tombs[c.ID] = tomb{c: &dead, until: time.Now().Add(tombstoneTTL)}
}

// sweep forgets expired tombstones and reports whether any was.
func (p *Provider) sweep(now time.Time) bool {
	changed := false
	for id, t := range p.tombs {
		if now.After(t.until) {
			delete(p.tombs, id)
			changed = true
		}
	}
	return changed
}

type tomb struct {
	c     *container
	until time.Time
}

// report sends the snapshot of the known containers.
func (p *Provider) report(sink discovery.Sink) {
	cs := make([]container, 0, len(p.containers)+len(p.tombs))
	for _, id := range slices.Sorted(maps.Keys(p.containers)) {
		cs = append(cs, *p.containers[id])
	}
	for _, id := range slices.Sorted(maps.Keys(p.tombs)) {
		if p.containers[id] == nil {
			cs = append(cs, *p.tombs[id].c)
		}
	}
	sink.Update(build(cs, options{
		ExposeByDefault:  p.cfg.ExposeByDefault,
		CompatNginxProxy: p.cfg.CompatNginxProxy,
		Self:             p.self,
	}))
}

// resync replaces the known containers by a fresh list. A container whose
// list entry did not change since the last resync keeps its model; the
// others are inspected. A container that cannot be inspected keeps its
// previous model (or stays unknown) and is retried at the next resync: one
// broken container never stops discovery of the others.
func (p *Provider) resync(ctx context.Context) error {
	p.self = p.findSelf(ctx, p.self)
	list, err := p.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: p.listFilters()})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	fresh := map[string]*container{}
	seen := map[string]string{}
	for _, s := range list.Items {
		fp := fingerprint(s)
		if old := p.containers[s.ID]; old != nil && p.seen[s.ID] == fp {
			fresh[s.ID], seen[s.ID] = old, fp
			continue
		}
		c, err := p.inspect(ctx, s.ID)
		switch {
		case errdefs.IsNotFound(err):
			continue // removed since the list
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			p.log.Warn().Err(err).Str("container", shortID(s.ID)).Msg("docker: keeping what was known of the container until the next resync")
			if old := p.containers[s.ID]; old != nil {
				fresh[s.ID] = old
			}
			continue
		}
		if c != nil {
			fresh[c.ID], seen[c.ID] = c, fp
		}
	}
	for id, c := range p.containers {
		if fresh[id] == nil {
			p.bury(c)
		}
	}
	p.containers, p.seen = fresh, seen
	for id := range p.stopping {
		if fresh[id] == nil {
			delete(p.stopping, id)
		}
	}
	for id := range p.meta {
		if fresh[id] == nil {
			delete(p.meta, id)
		}
	}
	return nil
}

// fingerprint sums up what a list entry says of a container's routing
// state: its state, health and addresses.
func fingerprint(s ctypes.Summary) string {
	var b strings.Builder
	b.WriteString(string(s.State))
	if i := strings.LastIndexByte(s.Status, '('); i >= 0 {
		b.WriteString(s.Status[i:]) // "(healthy)", "(health: starting)"
	}
	if s.NetworkSettings != nil {
		for _, name := range slices.Sorted(maps.Keys(s.NetworkSettings.Networks)) {
			b.WriteString("|" + name + "=")
			if ep := s.NetworkSettings.Networks[name]; ep != nil {
				b.WriteString(ep.IPAddress.String())
			}
		}
	}
	return b.String()
}

// listFilters selects the candidate containers at the API: those with a
// cutover.enable label, unless every container is a candidate. Stopped
// ones are listed too: their routes answer 503 until they run again.
func (p *Provider) listFilters() client.Filters {
	f := client.Filters{}
	if !p.cfg.ExposeByDefault && !p.cfg.CompatNginxProxy {
		f.Add("label", labelPrefix+"enable")
	}
	return f
}

// Client is the provider's Docker client, for the deploy orchestrator to
// share.
func (p *Provider) Client() *client.Client { return p.cli }
