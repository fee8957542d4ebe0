package docker

import (
	"context"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// eventFilters asks the engine for the container and network events that
// can change routing. Labels are not filtered here: network events carry
// the network's labels, not the container's.
func eventFilters() client.Filters {
	return client.Filters{}.
		Add("type", string(events.ContainerEventType), string(events.NetworkEventType)).
		Add("event", "start", "kill", "stop", "die", "destroy", "pause", "unpause",
			"health_status", "rename", "connect", "disconnect")
}

// handle applies one event and reports whether the known state changed.
// It re-inspects only the container the event names.
func (p *Provider) handle(ctx context.Context, msg events.Message) bool {
	id, action := msg.Actor.ID, string(msg.Action)
	if msg.Type == events.NetworkEventType {
		id = msg.Actor.Attributes["container"]
		if id == p.self.ID && id != "" {
			p.self = p.findSelf(ctx, p.self)
			return true
		}
	}
	if id == "" {
		return false
	}
	known := p.containers[id] != nil
	switch {
	case action == "destroy":
		if known {
			p.bury(p.containers[id])
		}
		delete(p.stopping, id)
		delete(p.meta, id)
		delete(p.containers, id)
		delete(p.seen, id)
		return known
	case action == "kill" || action == "stop":
		if known && p.containers[id].Running && stops(msg.Actor.Attributes["signal"], p.meta[id].stopSignal, action) {
			p.markStopping(id)
			return true
		}
		if !known {
			return false
		}
	case action == "start":
		delete(p.stopping, id)
		if !known && !p.mayBeCandidate(msg.Actor.Attributes) {
			return false
		}
	case !known:
		// Containers that are not candidates only matter once they start.
		return false
	}
	return p.refresh(ctx, id)
}

// mayBeCandidate tells from an event's attributes, which carry the
// container's labels, whether an unknown container is worth an inspect.
func (p *Provider) mayBeCandidate(attrs map[string]string) bool {
	if p.cfg.ExposeByDefault || p.cfg.CompatNginxProxy {
		return true
	}
	_, ok := attrs[labelPrefix+"enable"]
	return ok
}

// markStopping drains a container at once, before its process has
// handled the signal, and remembers it until the container starts again.
func (p *Provider) markStopping(id string) {
	c := *p.containers[id]
	c.Stopping = true
	p.containers[id] = &c
	p.stopping[id] = p.meta[id].startedAt
}

// refresh re-inspects one container.
func (p *Provider) refresh(ctx context.Context, id string) bool {
	c, err := p.inspect(ctx, id)
	switch {
	case errdefs.IsNotFound(err):
		if c := p.containers[id]; c != nil {
			p.bury(c)
		}
		delete(p.containers, id)
		return true
	case err != nil:
		// The engine is in trouble; the next resync catches up.
		p.log.Warn().Err(err).Str("container", shortID(id)).Msg("docker: inspect after event")
		return false
	case c == nil:
		_, was := p.containers[id]
		delete(p.containers, id)
		return was
	}
	p.containers[id] = c
	return true
}

// stops reports whether a kill with the given signal ends the container:
// the usual terminating signals or the container's own stop signal. A
// "stop" event always does.
func stops(signal string, stopSignal syscall.Signal, action string) bool {
	if action == "stop" {
		return true
	}
	sig := parseSignal(signal)
	switch sig {
	case 0, syscall.SIGTERM, syscall.SIGKILL, syscall.SIGINT, syscall.SIGQUIT:
		return true
	}
	return sig == stopSignal
}

// parseSignal parses a signal as Docker writes it: "15", "SIGTERM" or
// "TERM". Unknown or empty gives 0.
func parseSignal(s string) syscall.Signal {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n)
	}
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	return unix.SignalNum(s)
}
