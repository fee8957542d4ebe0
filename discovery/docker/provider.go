package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/containerd/errdefs"
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
		containers: map[string]*container{}, stopping: map[string]string{}, meta: map[string]containerMeta{}}, nil
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
		connected, err := p.session(ctx, sink, &lostAt)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
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

// session subscribes to events, resyncs, and follows events until the
// stream fails. It reports whether it got as far as a full resync.
func (p *Provider) session(ctx context.Context, sink discovery.Sink, lostAt *time.Time) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := p.cli.Events(ctx, client.EventsListOptions{Filters: eventFilters()})
	if err := p.resync(ctx); err != nil {
		return false, err
	}
	if !lostAt.IsZero() {
		p.log.Info().Str("docker", p.host).Dur("outage", time.Since(*lostAt)).Msg("docker reconnected and resynced")
		*lostAt = time.Time{}
	}
	p.report(sink)
	tick := time.NewTicker(p.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-stream.Err:
			if err == nil {
				err = errors.New("event stream ended")
			}
			return true, fmt.Errorf("docker events: %w", err)
		case msg := <-stream.Messages:
			if p.handle(ctx, msg) {
				p.report(sink)
			}
		case <-tick.C:
			if err := p.resync(ctx); err != nil {
				return true, err
			}
			p.report(sink)
		}
	}
}

// report sends the snapshot of the known containers.
func (p *Provider) report(sink discovery.Sink) {
	cs := make([]container, 0, len(p.containers))
	for _, id := range slices.Sorted(maps.Keys(p.containers)) {
		cs = append(cs, *p.containers[id])
	}
	sink.Update(build(cs, options{
		ExposeByDefault:  p.cfg.ExposeByDefault,
		CompatNginxProxy: p.cfg.CompatNginxProxy,
		Self:             p.self,
	}))
}

// resync replaces the known containers by a fresh list and inspect.
func (p *Provider) resync(ctx context.Context) error {
	p.self = p.findSelf(ctx)
	list, err := p.cli.ContainerList(ctx, client.ContainerListOptions{Filters: p.listFilters()})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	fresh := map[string]*container{}
	for _, s := range list.Items {
		c, err := p.inspect(ctx, s.ID)
		if errdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return err
		}
		if c != nil {
			fresh[c.ID] = c
		}
	}
	p.containers = fresh
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

// listFilters selects the candidate containers at the API: running ones,
// with a cutover.enable label unless every container is a candidate.
func (p *Provider) listFilters() client.Filters {
	f := client.Filters{}.Add("status", "running", "paused")
	if !p.cfg.ExposeByDefault && !p.cfg.CompatNginxProxy {
		f.Add("label", labelPrefix+"enable")
	}
	return f
}
