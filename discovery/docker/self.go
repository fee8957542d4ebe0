package docker

import (
	"context"
	"os"
	"regexp"
	"slices"

	"github.com/moby/moby/client"
)

// containerIDInMount finds the container ID in the mounts Docker makes for
// every container (/etc/hostname, /etc/hosts, /etc/resolv.conf come from
// .../containers/<id>/...).
var containerIDInMount = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)

// ownContainerID returns the ID of the container cutover runs in, or "".
func ownContainerID() string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	if m := containerIDInMount.FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return ""
}

// findSelf inspects cutover's own container, if it runs in one on this
// engine, for the networks it can reach containers on.
func (p *Provider) findSelf(ctx context.Context) self {
	id := ownContainerID()
	if id == "" {
		return self{}
	}
	res, err := p.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		// Another engine's container, or gone: cutover reaches containers
		// as a host process would.
		return self{}
	}
	s := self{InContainer: true, ID: id}
	if res.Container.NetworkSettings != nil {
		for name := range res.Container.NetworkSettings.Networks {
			s.Networks = append(s.Networks, name)
		}
	}
	slices.Sort(s.Networks)
	return s
}
