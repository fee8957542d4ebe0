package deploy

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

var clientInspect = client.ContainerInspectOptions{}

// each runs f on every item concurrently and calls report for each
// result, from the caller's goroutine, as they come. It returns when all
// are done.
func each[T, R any](items []T, f func(T) R, report func(T, R)) {
	type done struct {
		item T
		res  R
	}
	ch := make(chan done)
	for _, it := range items {
		go func() { ch <- done{it, f(it)} }()
	}
	for range items {
		d := <-ch
		report(d.item, d.res)
	}
}

// create creates p's new container and connects it to its networks.
func (r *run) create(ctx context.Context, p *pair) error {
	res, err := r.d.eng.ContainerCreate(ctx, p.spec.create)
	if err != nil {
		return fmt.Errorf("create container %s to replace %s: %w", p.spec.name, p.old.name, err)
	}
	p.new = &box{id: res.ID, name: p.spec.name, restarts: restarts(p.spec.create.HostConfig)}
	r.step("create", p.new.name, "created as a copy of %s with image %s", p.old.name, r.res.Image)
	for _, w := range res.Warnings {
		r.log.Warn().Str("container", p.new.name).Msg("create: " + w)
	}
	for _, c := range p.spec.connect {
		_, err := r.d.eng.NetworkConnect(ctx, c.network, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: c.endpoint})
		if err != nil {
			return fmt.Errorf("connect container %s to network %s: %w", p.new.name, c.network, err)
		}
		r.step("create", p.new.name, "connected to network %s", c.network)
	}
	return nil
}

// bringUp creates and starts the new containers of pairs and waits until
// the proxy serves every one. The first failure ends it.
func (r *run) bringUp(ctx context.Context, pairs []*pair) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deploy cancelled: %w", err)
	}
	var news []*box
	for _, p := range pairs {
		if err := r.create(ctx, p); err != nil {
			return err
		}
		news = append(news, p.new)
	}
	ex := r.watchExits(ctx, news)
	defer ex.close()
	for _, b := range news {
		if _, err := r.d.eng.ContainerStart(ctx, b.id, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start container %s: %w", b.name, err)
		}
		r.step("start", b.name, "started")
	}
	for _, b := range news {
		r.step("wait", b.name, "waiting until the proxy serves it (health timeout %s)", r.req.HealthTimeout)
	}
	_, err := r.waitServing(ctx, ex, news, true)
	return err
}

// exits follows the die events of containers a deploy waits for: a
// container that exits ends the wait for it at once, or, when its restart
// policy restarts it, once it has exited crashLoop times.
type exits struct {
	ctxs    map[string]context.Context
	cancels map[string]context.CancelCauseFunc
	stop    context.CancelFunc
	done    chan struct{}
}

// crashLoop is how many exits of a container that Docker restarts end the
// wait for it.
const crashLoop = 3

// exitError says that a container exited while the deploy waited for it.
type exitError struct {
	name, code string
	times      int
}

func (e *exitError) Error() string {
	if e.times > 1 {
		return fmt.Sprintf("container %s exited %d times (last code %s) before the proxy served it: see docker logs %s", e.name, e.times, e.code, e.name)
	}
	return fmt.Sprintf("container %s exited (code %s) before the proxy served it: see docker logs %s", e.name, e.code, e.name)
}

// errGaveUp ends the waits of a batch when one of them failed.
var errGaveUp = errors.New("stopped waiting: another container of the batch failed")

// watchExits subscribes to the die events of bs; call it before starting
// them, and close it after the wait.
func (r *run) watchExits(ctx context.Context, bs []*box) *exits {
	sctx, stop := context.WithCancel(ctx)
	ex := &exits{ctxs: map[string]context.Context{}, cancels: map[string]context.CancelCauseFunc{}, stop: stop, done: make(chan struct{})}
	byID := map[string]*box{}
	var ids []string
	for _, b := range bs {
		ex.ctxs[b.id], ex.cancels[b.id] = context.WithCancelCause(ctx)
		byID[b.id] = b
		ids = append(ids, b.id)
	}
	f := client.Filters{}.Add("type", string(events.ContainerEventType)).Add("event", string(events.ActionDie)).Add("container", ids...)
	stream := r.d.eng.Events(sctx, client.EventsListOptions{Filters: f})
	go func() {
		defer close(ex.done)
		died := map[string]int{}
		for {
			select {
			case <-sctx.Done():
				return
			case <-stream.Err:
				return // no exit events: the health timeout still ends the wait
			case m, ok := <-stream.Messages:
				if !ok {
					return
				}
				b := byID[m.Actor.ID]
				if b == nil || m.Action != events.ActionDie {
					continue
				}
				died[b.id]++
				if !b.restarts || died[b.id] >= crashLoop {
					ex.cancels[b.id](&exitError{name: b.name, code: m.Actor.Attributes["exitCode"], times: died[b.id]})
				}
			}
		}
	}()
	return ex
}

func (ex *exits) ctx(b *box) context.Context { return ex.ctxs[b.id] }

func (ex *exits) cancelAll(cause error) {
	for _, c := range ex.cancels {
		c(cause)
	}
}

func (ex *exits) close() {
	ex.stop()
	<-ex.done
	ex.cancelAll(context.Canceled)
}

// waitServing waits, concurrently, until the proxy serves each of bs,
// within the health timeout. With group, the first failure ends the other
// waits. It returns the failures by container and the first one.
func (r *run) waitServing(ctx context.Context, ex *exits, bs []*box, group bool) (map[*box]error, error) {
	errs := map[*box]error{}
	var first error
	each(bs, func(b *box) error {
		bctx, cancel := context.WithTimeout(ex.ctx(b), r.req.HealthTimeout)
		defer cancel()
		err := r.d.traffic.WaitServing(bctx, r.req.Service, b.id)
		if err == nil {
			return nil
		}
		return r.waitError(ctx, ex.ctx(b), bctx, b, err)
	}, func(b *box, err error) {
		if err == nil {
			r.step("serving", b.name, "the proxy serves it: it passed its health checks")
			return
		}
		errs[b] = err
		if errors.Is(err, errGaveUp) {
			return
		}
		r.step("wait", b.name, "%v", err)
		if first == nil {
			first = err
			if group {
				ex.cancelAll(errGaveUp)
			}
		}
	})
	return errs, first
}

// waitError says why the wait for b ended.
func (r *run) waitError(ctx, exitCtx, waitCtx context.Context, b *box, err error) error {
	var exit *exitError
	switch cause := context.Cause(exitCtx); {
	case ctx.Err() != nil:
		return fmt.Errorf("deploy cancelled while waiting for container %s: %w", b.name, ctx.Err())
	case errors.As(cause, &exit), errors.Is(cause, errGaveUp):
		return cause
	case errors.Is(waitCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("container %s did not pass its health checks within %s (health timeout): the proxy never served it", b.name, r.req.HealthTimeout)
	}
	return fmt.Errorf("wait for container %s: %w", b.name, err)
}

// drain takes bs out of rotation at once and waits for their in-flight
// requests, up to the drain timeout.
func (r *run) drain(ctx context.Context, bs []*box) {
	for _, b := range bs {
		r.step("drain", b.name, "draining: no new requests; in-flight ones may take up to %s", r.req.DrainTimeout)
	}
	each(bs, func(b *box) int {
		dctx, cancel := context.WithTimeout(ctx, r.req.DrainTimeout)
		defer cancel()
		return r.d.traffic.Drain(dctx, r.req.Service, b.id)
	}, func(b *box, left int) {
		if left == 0 {
			r.step("drain", b.name, "drained")
			return
		}
		r.step("drain", b.name, "drain timeout: %d requests still in flight; stopping it anyway", left)
	})
}

// stopAll stops bs concurrently, each with its own stop signal and
// timeout, and returns the failures.
func (r *run) stopAll(ctx context.Context, bs []*box) map[*box]error {
	errs := map[*box]error{}
	each(bs, func(b *box) error {
		_, err := r.d.eng.ContainerStop(ctx, b.id, client.ContainerStopOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return err
	}, func(b *box, err error) {
		if err != nil {
			errs[b] = fmt.Errorf("stop container %s: %w", b.name, err)
			r.step("stop", b.name, "could not stop it: %v", err)
			return
		}
		r.step("stop", b.name, "stopped")
	})
	return errs
}

// remove removes b, keeping its volumes. A container already gone (auto
// remove) is fine.
func (r *run) remove(ctx context.Context, b *box) error {
	_, err := r.d.eng.ContainerRemove(ctx, b.id, client.ContainerRemoveOptions{RemoveVolumes: false})
	if err != nil && !cerrdefs.IsNotFound(err) {
		err = fmt.Errorf("remove container %s: %w: remove it by hand (docker rm -f %s; its volumes are kept)", b.name, err, b.name)
		r.step("remove", b.name, "%v", err)
		return err
	}
	r.step("remove", b.name, "removed (volumes kept)")
	return nil
}

// retire drains and stops the old containers of pairs. A container that
// cannot be stopped is recorded in its pair.
func (r *run) retire(ctx context.Context, pairs []*pair) {
	olds := make([]*box, len(pairs))
	for i, p := range pairs {
		olds[i] = p.old
	}
	r.drain(ctx, olds)
	errs := r.stopAll(ctx, olds)
	for _, p := range pairs {
		p.stopped, p.stopFailed = errs[p.old] == nil, errs[p.old]
	}
}

// removeOld removes the retired old containers.
func (r *run) removeOld(ctx context.Context, pairs []*pair) {
	for _, p := range pairs {
		if p.stopFailed != nil {
			r.warn("remove", p.old.name, fmt.Errorf("old container %s is drained (it gets no requests) but %v: stop and remove it by hand (docker rm -f %s)", p.old.name, p.stopFailed, p.old.name))
			continue
		}
		if err := r.remove(ctx, p.old); err != nil {
			r.warn("remove", p.old.name, err)
		}
	}
}

// discard drains, stops and removes new containers of a failed deploy:
// some may already serve, so they are drained like old ones.
func (r *run) discard(ctx context.Context, pairs []*pair) {
	var news []*box
	for _, p := range pairs {
		if p.new != nil {
			news = append(news, p.new)
		}
	}
	if len(news) == 0 {
		return
	}
	r.drain(ctx, news)
	stopErrs := r.stopAll(ctx, news)
	for _, b := range news {
		if err := stopErrs[b]; err != nil {
			r.warn("stop", b.name, fmt.Errorf("new container %s: %w: remove it by hand (docker rm -f %s)", b.name, err, b.name))
			continue
		}
		if err := r.remove(ctx, b); err != nil {
			r.warn("remove", b.name, err)
		}
	}
}

// restore starts the retired old containers of pairs again and waits
// until the proxy serves them. It returns the pairs whose old container
// serves again and those whose old one does not.
func (r *run) restore(ctx context.Context, pairs []*pair) (back, lost []*pair) {
	if len(pairs) == 0 {
		return nil, nil
	}
	var olds []*box
	for _, p := range pairs {
		olds = append(olds, p.old)
	}
	ex := r.watchExits(ctx, olds)
	defer ex.close()
	var started []*pair
	for _, p := range pairs {
		if p.stopFailed != nil {
			// Still running, but drained: a restart brings it back.
			_, _ = r.d.eng.ContainerStop(ctx, p.old.id, client.ContainerStopOptions{})
		}
		if _, err := r.d.eng.ContainerStart(ctx, p.old.id, client.ContainerStartOptions{}); err != nil {
			r.step("start", p.old.name, "could not start it again: %v", err)
			lost = append(lost, p)
			continue
		}
		r.step("start", p.old.name, "started again")
		started = append(started, p)
	}
	var bs []*box
	for _, p := range started {
		bs = append(bs, p.old)
		r.step("wait", p.old.name, "waiting until the proxy serves it again (health timeout %s)", r.req.HealthTimeout)
	}
	errs, _ := r.waitServing(ctx, ex, bs, false)
	for _, p := range started {
		if errs[p.old] != nil {
			lost = append(lost, p)
		} else {
			back = append(back, p)
		}
	}
	return back, lost
}

// hold asks the proxy to hold the service's requests; the returned
// function releases them, once.
func (r *run) hold() func() {
	release := r.d.traffic.Hold(r.req.Service, r.req.MaxPause)
	r.step("hold", "", "the proxy holds requests that find no container, for up to %s (max pause)", r.req.MaxPause)
	done := false
	return func() {
		if done {
			return
		}
		done = true
		release()
		r.step("release", "", "the proxy no longer holds requests")
	}
}

func names(bs []*box) string {
	s := ""
	for i, b := range bs {
		if i > 0 {
			s += ", "
		}
		s += b.name
	}
	return s
}
