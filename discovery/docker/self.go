package docker

import (
	"context"
	"os"
	"regexp"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// containerIDInMount finds the container ID in the mount Docker makes for
// every container's /etc/hostname (from .../containers/<id>/hostname). On
// the host no such mount exists, while mounts of other containers' files
// (shm, for example) may.
var containerIDInMount = regexp.MustCompile(`/containers/([0-9a-f]{64})/hostname /etc/hostname `)

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
// engine, for the networks it can reach containers on. On a passing error
// it keeps what it knew (prev).
func (p *Provider) findSelf(ctx context.Context, prev self) self {
	id := ownContainerID()
	if id == "" {
		return self{}
	}
	res, err := p.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if errdefs.IsNotFound(err) {
		// Another engine's container: cutover reaches containers as a
		// host process would.
		return self{}
	}
	if err != nil {
		return prev
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
