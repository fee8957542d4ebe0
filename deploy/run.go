package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/rs/zerolog"
)

// run is one deploy in progress. Its methods run on Deploy's goroutine;
// helpers that fan out (each) report back to it, so steps are sent from
// there only.
type run struct {
	d        *Deployer
	req      Request
	res      Result
	progress func(Step)
	log      zerolog.Logger
	warnings []string // what a deploy leaves to clean up by hand
	counted  bool     // the service had containers: the deploy is counted
}

// box is a container a deploy acts on.
type box struct {
	id, name string
	// restarts says that its restart policy restarts it when it exits, so
	// that an exit does not end the wait for it to serve.
	restarts bool
}

// pair is an old container and the new one that replaces it.
type pair struct {
	old        *box
	spec       spec
	new        *box  // nil until created
	stopped    bool  // the old one was drained and stopped
	stopFailed error // the old one was drained but could not be stopped
}

// plan is what prepare found out, before anything was touched.
type plan struct {
	strategy Strategy
	pairs    []*pair
}

// execute runs the deploy that holds slot s.
func (d *Deployer) execute(ctx context.Context, s slot, req Request, progress func(Step), rollback bool) (Result, error) {
	req = req.withDefaults()
	r := &run{d: d, req: req, progress: progress,
		res: Result{ID: s.id, Service: req.Service, Strategy: req.Strategy, Image: req.Image,
			Outcome: Failed, Started: s.started, Trigger: req.Trigger},
		log: d.log.With().Str("service", req.Service).Str("deploy", s.id).Logger(),
	}
	err := r.deploy(ctx, rollback)
	r.finish(err)
	d.end(req.Service, &r.res)
	return r.res, err
}

// deploy prepares, then runs the strategy. The strategies set the outcome
// when they revert.
func (r *run) deploy(ctx context.Context, rollback bool) error {
	if err := r.req.Validate(); err != nil {
		return fmt.Errorf("deploy request: %w", err)
	}
	p, err := r.prepare(ctx, rollback)
	if err != nil {
		return err
	}
	olds := make([]*box, len(p.pairs))
	for i, q := range p.pairs {
		olds[i] = q.old
	}
	switch p.strategy {
	case Rolling:
		r.step("plan", "", "rolling deploy of %s: replacing %s, %d at a time", r.res.Image, names(olds), min(r.req.Batch, len(olds)))
	default:
		r.step("plan", "", "%s deploy of %s: replacing %s", p.strategy, r.res.Image, names(olds))
	}
	switch p.strategy {
	case Recreate:
		return r.recreate(ctx, p)
	case BlueGreen:
		return r.rolling(ctx, p, len(p.pairs))
	default:
		return r.rolling(ctx, p, r.req.Batch)
	}
}

// prepare finds the old containers, the strategy and the image, and
// builds the new containers' specs. It touches no container.
func (r *run) prepare(ctx context.Context, rollback bool) (*plan, error) {
	olds, err := r.inspectOld(ctx)
	if err != nil {
		return nil, err
	}
	r.counted = true
	first := olds[0]
	strategy, err := r.strategy(first)
	if err != nil {
		return nil, err
	}
	r.res.Strategy = strategy
	r.res.Previous = first.Config.Image
	ref := r.req.Image
	switch {
	case rollback:
		if ref, err = r.previous(ctx, first); err != nil {
			return nil, err
		}
	case ref == "":
		ref = first.Config.Image
	}
	r.res.Image = ref
	if strategy != Recreate {
		if err := startFirstConflict(olds, strategy); err != nil {
			return nil, fmt.Errorf("service %s: %w", r.req.Service, err)
		}
	}
	if _, err := r.ensureImage(ctx, ref, r.req.Pull && !rollback); err != nil {
		return nil, err
	}
	images := r.oldImages(ctx, olds)
	p := &plan{strategy: strategy}
	for _, o := range olds {
		in := specInput{old: o, oldImage: images[o.Image], image: ref, deployID: r.res.ID, at: r.res.Started}
		sp := buildSpec(in)
		p.pairs = append(p.pairs, &pair{old: &box{id: o.ID, name: dockerName(o.Name), restarts: restarts(o.HostConfig)}, spec: sp})
	}
	return p, nil
}

// inspectOld inspects the containers that serve the service now.
func (r *run) inspectOld(ctx context.Context) ([]container.InspectResponse, error) {
	ids := r.d.traffic.Containers(r.req.Service)
	if len(ids) == 0 {
		return nil, fmt.Errorf("service %s has no running container to replace: a deploy replaces the containers that cutover routes the service to (see cutover status)", r.req.Service)
	}
	olds := make([]container.InspectResponse, 0, len(ids))
	for _, id := range ids {
		res, err := r.d.eng.ContainerInspect(ctx, id, clientInspect)
		if err != nil {
			return nil, fmt.Errorf("service %s: inspect container %s: %w", r.req.Service, shortDocker(id), err)
		}
		c := res.Container
		if c.Config == nil || c.HostConfig == nil {
			return nil, fmt.Errorf("service %s: inspect container %s: the engine returned no configuration", r.req.Service, shortDocker(id))
		}
		olds = append(olds, c)
	}
	return olds, nil
}

// strategy is the request's, else the first container's label, else the
// default.
func (r *run) strategy(first container.InspectResponse) (Strategy, error) {
	if r.req.Strategy != "" {
		return r.req.Strategy, nil // validated
	}
	label := Strategy(strings.TrimSpace(first.Config.Labels[LabelStrategy]))
	if label == "" {
		return DefaultStrategy, nil
	}
	if err := label.Validate(); err != nil {
		return "", fmt.Errorf("service %s: container %s has label %s=%w: fix the label, or choose a strategy for this deploy",
			r.req.Service, dockerName(first.Name), LabelStrategy, err)
	}
	return label, nil
}

// finish sets the result's outcome, duration and error, sends the last
// step, logs and counts the deploy.
func (r *run) finish(err error) {
	r.res.Duration = r.d.now().Sub(r.res.Started)
	left := strings.Join(r.warnings, "; ")
	switch {
	case err == nil:
		r.res.Outcome = Succeeded
		if left != "" {
			r.res.Error = "the new containers serve, but: " + left
		}
		r.step("done", "", "%s serves service %s (%s deploy in %s)", r.res.Image, r.res.Service, r.res.Strategy, r.res.Duration.Round(time.Millisecond))
	default:
		r.res.Error = err.Error()
		if left != "" {
			r.res.Error += "; also: " + left
		}
		r.step("failed", "", "%s: %s", r.res.Outcome, r.res.Error)
	}
	ev := r.log.Info()
	switch r.res.Outcome {
	case RolledBack:
		ev = r.log.Warn()
	case Failed:
		ev = r.log.Error()
	}
	ev.Str("outcome", r.res.Outcome).Str("image", r.res.Image).Str("strategy", string(r.res.Strategy)).
		Str("trigger", r.res.Trigger).Dur("duration", r.res.Duration).Str("err", r.res.Error).Msg("deploy finished")
	if r.counted {
		r.d.metrics.observe(r.res)
	}
}

// step reports one step to the caller and the log.
func (r *run) step(phase, container, format string, args ...any) {
	s := Step{At: r.d.now(), Service: r.req.Service, ID: r.res.ID, Phase: phase, Container: container,
		Message: fmt.Sprintf(format, args...)}
	ev := r.log.Info().Str("phase", phase)
	if container != "" {
		ev = ev.Str("container", container)
	}
	ev.Msg(s.Message)
	if r.progress != nil {
		r.progress(s)
	}
}

// warn records something the deploy leaves to clean up by hand.
func (r *run) warn(phase, container string, err error) {
	r.warnings = append(r.warnings, err.Error())
	r.log.Warn().Str("phase", phase).Str("container", container).Err(err).Msg("left to clean up")
}

// restarts reports whether a container with this host config is
// restarted by Docker when it exits by itself.
func restarts(hc *container.HostConfig) bool {
	if hc == nil {
		return false
	}
	switch hc.RestartPolicy.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped, container.RestartPolicyOnFailure:
		return true
	}
	return false
}
