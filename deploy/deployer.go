package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// historySize bounds the results kept in memory.
const historySize = 100

// ErrBusy is wrapped by the error of a Deploy or Rollback of a service
// whose deploy is running.
var ErrBusy = errors.New("a deploy is already running")

// Config configures a Deployer.
type Config struct {
	// Engine drives Docker; required. NewEngine adapts a *client.Client.
	Engine Engine
	// Traffic drives the proxy; required.
	Traffic Traffic
	// Logger receives a line per step. The zero value logs nothing.
	Logger zerolog.Logger
	// Registerer receives cutover_deploys_total{service,strategy,result}
	// and cutover_deploy_duration_seconds{service,strategy}. Nil means no
	// metrics.
	Registerer prometheus.Registerer
	// Now is the clock of steps, results and labels. Nil means time.Now.
	Now func() time.Time
}

// Deployer runs deploys, one per service at a time. It is safe for
// concurrent use; Run owns the background deploys (Trigger) and
// autoredeploy.
type Deployer struct {
	eng     Engine
	traffic Traffic
	log     zerolog.Logger
	now     func() time.Time
	metrics *metrics

	// wake tells Run that a request was queued or a deploy ended.
	wake chan struct{}

	mu      sync.Mutex
	running map[string]slot    // service → its running deploy
	pending map[string]Request // service → the newest queued request
	history []Result           // newest first, at most historySize
}

// slot is a service's claim to run a deploy.
type slot struct {
	id      string
	started time.Time
}

// New returns a Deployer. It starts nothing: Run does.
func New(cfg Config) (*Deployer, error) {
	if cfg.Engine == nil {
		return nil, errors.New("deploy: Config.Engine is required")
	}
	if cfg.Traffic == nil {
		return nil, errors.New("deploy: Config.Traffic is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Deployer{
		eng: cfg.Engine, traffic: cfg.Traffic, log: cfg.Logger, now: cfg.Now, metrics: m,
		wake:    make(chan struct{}, 1),
		running: map[string]slot{}, pending: map[string]Request{},
	}, nil
}

// Deploy runs one deploy to its end and returns its result. progress,
// when not nil, receives every step as it happens, from Deploy's
// goroutine. A deploy that did not succeed returns its Result and an
// error; a service whose deploy runs returns an error wrapping ErrBusy at
// once.
func (d *Deployer) Deploy(ctx context.Context, req Request, progress func(Step)) (Result, error) {
	s, err := d.begin(req.Service)
	if err != nil {
		return Result{}, err
	}
	return d.execute(ctx, s, req, progress, false)
}

// Rollback deploys the image that the service's current containers
// replaced (their cutover.deploy.previous label), with req's settings; it
// fails if there is none.
func (d *Deployer) Rollback(ctx context.Context, req Request, progress func(Step)) (Result, error) {
	s, err := d.begin(req.Service)
	if err != nil {
		return Result{}, err
	}
	req.Image = ""
	if req.Trigger == "" {
		req.Trigger = triggerRollback
	}
	return d.execute(ctx, s, req, progress, true)
}

// begin claims the service's slot.
func (d *Deployer) begin(service string) (slot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.running[service]; ok {
		return slot{}, &busyError{service: service, slot: s}
	}
	s := slot{id: newID(), started: d.now()}
	d.running[service] = s
	return s, nil
}

// end frees the service's slot and records the result.
func (d *Deployer) end(service string, res *Result) {
	d.mu.Lock()
	delete(d.running, service)
	if res != nil {
		d.history = append([]Result{*res}, d.history[:min(len(d.history), historySize-1)]...)
	}
	d.mu.Unlock()
	d.signal()
}

// signal wakes Run without blocking.
func (d *Deployer) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// busyError is the error of a deploy refused because another one runs.
type busyError struct {
	service string
	slot    slot
}

func (e *busyError) Error() string {
	return fmt.Sprintf("service %s: %s (id %s, started %s): wait for it to end, or see cutover deploys",
		e.service, ErrBusy, e.slot.id, e.slot.started.Format(time.RFC3339))
}

func (e *busyError) Is(target error) bool { return target == ErrBusy }

// newID returns a deploy ID: 8 random bytes in hex.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// shortID is the part of a deploy ID that names containers.
func shortID(id string) string { return id[:min(8, len(id))] }

// Running reports how many deploys run now.
func (d *Deployer) Running() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.running)
}

// Wait returns when no deploy runs, or with ctx's error: a process that
// stops lets running deploys end first rather than leave a service half
// replaced.
func (d *Deployer) Wait(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for d.Running() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
