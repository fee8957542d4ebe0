package docker

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// compatEnv are the environment variables that --compat nginx-proxy reads.
var compatEnv = []string{"VIRTUAL_HOST", "VIRTUAL_PORT", "VIRTUAL_PATH"}

// inspect returns the container as the provider models it, or nil when it
// is not a candidate for routing.
func (p *Provider) inspect(ctx context.Context, id string) (*container, error) {
	res, err := p.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	c := fromInspect(res.Container, p.cfg.CompatNginxProxy)
	if !p.candidate(c) {
		return nil, nil
	}
	m := containerMeta{}
	if st := res.Container.State; st != nil {
		m.startedAt = st.StartedAt
	}
	if cfg := res.Container.Config; cfg != nil {
		m.stopSignal = parseSignal(cfg.StopSignal)
	}
	p.meta[c.ID] = m
	if at, ok := p.stopping[c.ID]; ok && c.Running && at == m.startedAt {
		c.Stopping = true
	}
	return c, nil
}

// containerMeta is what the provider keeps of a container beyond the
// routing model, to tell stop signals from others.
type containerMeta struct {
	startedAt  string
	stopSignal syscall.Signal
}

// candidate reports whether c could be routed: build decides the rest.
func (p *Provider) candidate(c *container) bool {
	if p.cfg.ExposeByDefault {
		return true
	}
	if _, ok := c.Labels[labelPrefix+"enable"]; ok {
		return true
	}
	return p.cfg.CompatNginxProxy && c.Env["VIRTUAL_HOST"] != ""
}

// fromInspect extracts what routing needs from an inspect response.
func fromInspect(in ctypes.InspectResponse, compat bool) *container {
	c := &container{ID: in.ID, Name: strings.TrimPrefix(in.Name, "/"), Networks: map[string]netip.Addr{}}
	if in.State != nil {
		c.Running = in.State.Running && !in.State.Restarting
		c.Paused = in.State.Paused
		if in.State.Health != nil {
			c.Health = string(in.State.Health.Status)
		}
	}
	if in.Config != nil {
		c.Labels = in.Config.Labels
		c.ExposedPorts = tcpPorts(in.Config.ExposedPorts)
		if compat {
			c.Env = envOf(in.Config.Env, compatEnv)
		}
	}
	if in.HostConfig != nil {
		c.NetworkMode = string(in.HostConfig.NetworkMode)
	}
	if in.NetworkSettings != nil {
		for name, ep := range in.NetworkSettings.Networks {
			var addr netip.Addr
			if ep != nil {
				addr = ep.IPAddress
				if !addr.IsValid() {
					addr = ep.GlobalIPv6Address
				}
			}
			c.Networks[name] = addr
		}
	}
	return c
}

func tcpPorts(set network.PortSet) []int {
	var ports []int
	for p := range set {
		if p.Proto() == network.TCP {
			ports = append(ports, int(p.Num()))
		}
	}
	slices.Sort(ports)
	return ports
}

// envOf returns the values of the named variables in env, or nil.
func envOf(env []string, names []string) map[string]string {
	var out map[string]string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(names, k) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
