package proxy

import (
	"context"
	"strings"
	"time"
)

// The methods in this file are what the deploy orchestrator asks of the
// proxy (deploy.Traffic). Containers are named by ID: a backend's
// endpoint ID is "<container ID>:<port>" for Docker backends.

// trafficPoll is how often deploy waits look at backend state, which
// changes through atomics, not through table updates.
const trafficPoll = 20 * time.Millisecond

// Containers returns the IDs of the containers that back the service in
// the current table and are not being stopped, in table order.
func (p *Proxy) Containers(service string) []string {
	svc := p.table.Load().Service(service)
	if svc == nil {
		return nil
	}
	var ids []string
	for _, b := range svc.backends {
		id := b.containerID()
		if b.out.Load()&(outDraining|outDeployDrain|outRemoved) != 0 || id == "" || contains(ids, id) {
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// containerID is the container part of a Docker endpoint ID, or "".
func (b *Backend) containerID() string {
	id, _, ok := strings.Cut(b.endpoint, ":")
	if !ok {
		return ""
	}
	return id
}

// backendsOf returns the backends of a container in the current table.
func (p *Proxy) backendsOf(service, containerID string) []*Backend {
	svc := p.table.Load().Service(service)
	if svc == nil {
		return nil
	}
	var out []*Backend
	for _, b := range svc.backends {
		if b.containerID() == containerID {
			out = append(out, b)
		}
	}
	return out
}

// WaitServing returns when a backend of the container is in the table and
// available (it passed its health checks), or ctx's error.
func (p *Proxy) WaitServing(ctx context.Context, service, containerID string) error {
	tick := time.NewTicker(trafficPoll)
	defer tick.Stop()
	for {
		for _, b := range p.backendsOf(service, containerID) {
			if b.Available() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Drain takes the container's backends out of rotation at once, closes
// their idle connections, and waits until their in-flight requests have
// finished or ctx is done. It returns the requests still in flight.
func (p *Proxy) Drain(ctx context.Context, service, containerID string) int {
	bs := p.backendsOf(service, containerID)
	for _, b := range bs {
		b.setBits(outDeployDrain, outDeployDrain)
		b.closeIdle()
	}
	tick := time.NewTicker(trafficPoll)
	defer tick.Stop()
	for {
		left := int64(0)
		for _, b := range bs {
			left += b.InFlight()
		}
		if left == 0 {
			for _, b := range bs {
				b.closeIdle()
			}
			return 0
		}
		select {
		case <-ctx.Done():
			return int(left)
		case <-tick.C:
		}
	}
}

// hold makes requests of a service wait for a backend.
type hold struct {
	until time.Time
	done  chan struct{}
}

// Hold makes requests of the service that find no available backend wait
// for one, up to max, instead of failing with 503 (recreate deploys). The
// returned function ends the hold.
func (p *Proxy) Hold(service string, max time.Duration) func() {
	h := &hold{until: time.Now().Add(max), done: make(chan struct{})}
	p.mu.Lock()
	next := map[string]*hold{}
	for k, v := range *p.holds.Load() {
		next[k] = v
	}
	next[service] = h
	p.holds.Store(&next)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		cur := *p.holds.Load()
		if cur[service] != h {
			return
		}
		next := map[string]*hold{}
		for k, v := range cur {
			if k != service {
				next[k] = v
			}
		}
		p.holds.Store(&next)
		close(h.done)
	}
}

// waitHeld waits, for a request whose service has no available backend
// and is held, until the current table offers one. It reports whether
// ex.svc now has one.
func (p *Proxy) waitHeld(ex *exchange) bool {
	h := (*p.holds.Load())[ex.svc.name]
	if h == nil {
		return false
	}
	wait := time.NewTimer(time.Until(h.until))
	defer wait.Stop()
	tick := time.NewTicker(trafficPoll / 2)
	defer tick.Stop()
	for {
		if svc := p.table.Load().Service(ex.svc.name); svc != nil && svc.Available() > 0 {
			ex.svc = svc
			return true
		}
		select {
		case <-ex.r.Context().Done():
			return false
		case <-wait.C:
			return false
		case <-h.done:
			// Released: one last look.
			if svc := p.table.Load().Service(ex.svc.name); svc != nil && svc.Available() > 0 {
				ex.svc = svc
				return true
			}
			return false
		case <-tick.C:
		}
	}
}
