package deploy

import (
	"context"
	"sync"
)

// Trigger queues a deploy to run in the background (webhooks,
// autoredeploy) and returns at once. While a deploy of the service runs,
// the request waits; a newer request replaces an older queued one, so a
// burst of triggers makes one more deploy, of the newest request. Run
// starts the queued deploys; their results are logged, counted and kept
// in History.
func (d *Deployer) Trigger(req Request) {
	d.mu.Lock()
	if old, ok := d.pending[req.Service]; ok {
		d.log.Info().Str("service", req.Service).Str("image", req.Image).Str("replaces", old.Image).
			Str("trigger", req.Trigger).Msg("deploy queued, replacing the one queued before")
	} else {
		d.log.Info().Str("service", req.Service).Str("image", req.Image).Str("trigger", req.Trigger).Msg("deploy queued")
	}
	d.pending[req.Service] = req
	d.mu.Unlock()
	d.signal()
}

// Run runs the queued deploys and autoredeploy: it follows the engine's
// image events (tag, pull, load) and triggers a deploy of every service
// labelled cutover.autoredeploy=true whose image reference now names
// another image. It blocks until ctx ends, then waits for the deploys it
// started (ctx's end reverts them, see the package doc). Call it once.
func (d *Deployer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.followImages(ctx) })
	for ctx.Err() == nil {
		d.startQueued(ctx, &wg)
		select {
		case <-ctx.Done():
		case <-d.wake:
		}
	}
	wg.Wait()
	return ctx.Err()
}

// startQueued starts the queued deploys of services that run none.
func (d *Deployer) startQueued(ctx context.Context, wg *sync.WaitGroup) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for service, req := range d.pending {
		if _, busy := d.running[service]; busy {
			continue
		}
		delete(d.pending, service)
		s := slot{id: newID(), started: d.now()}
		d.running[service] = s
		wg.Go(func() { d.background(ctx, s, req) })
	}
}

// background runs a queued deploy in slot s. An autoredeploy whose
// service already runs the image (a deploy of that tag ran meanwhile) is
// dropped.
func (d *Deployer) background(ctx context.Context, s slot, req Request) {
	if req.Trigger == triggerAutoredeploy && d.upToDate(ctx, req) {
		d.log.Info().Str("service", req.Service).Str("image", req.Image).Msg("autoredeploy: the service runs the image already")
		d.end(req.Service, nil)
		return
	}
	_, _ = d.execute(ctx, s, req, nil, false) // logged and kept in history
}

// upToDate reports whether every container of the service runs the image
// that req.Image names now.
func (d *Deployer) upToDate(ctx context.Context, req Request) bool {
	img, err := d.eng.ImageInspect(ctx, req.Image)
	if err != nil {
		return false
	}
	ids := d.traffic.Containers(req.Service)
	for _, id := range ids {
		res, err := d.eng.ContainerInspect(ctx, id, clientInspect)
		if err != nil || res.Container.Image != img.ID {
			return false
		}
	}
	return len(ids) > 0
}
