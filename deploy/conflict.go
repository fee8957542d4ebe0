package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// startFirstConflict reports an old container that cannot have a twin
// running beside it, as start-first strategies need: one that publishes a
// fixed host port, or uses the host network. The port would be taken, so
// the new container could not start; this is found before anything is
// touched.
func startFirstConflict(olds []container.InspectResponse, s Strategy) error {
	for _, o := range olds {
		name := dockerName(o.Name)
		if o.HostConfig.NetworkMode.IsHost() {
			return fmt.Errorf("container %s uses the host network, so a %s deploy cannot run its new container beside it: deploy with --strategy recreate (the proxy holds requests meanwhile)", name, s)
		}
		ports := o.HostConfig.PortBindings
		for _, p := range slices.SortedFunc(maps.Keys(ports), func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) }) {
			for _, b := range ports[p] {
				if fixedHostPort(b.HostPort) {
					return fmt.Errorf("container %s publishes host port %s (for its port %s), so a %s deploy cannot start its new container beside it: deploy with --strategy recreate (the proxy holds requests meanwhile), or publish no fixed host port (cutover reaches containers on their own ports)",
						name, b.HostPort, p, s)
				}
			}
		}
	}
	return nil
}

// fixedHostPort reports whether a binding's host port is one fixed port;
// an empty or zero port is chosen by Docker, a range leaves it a choice.
func fixedHostPort(p string) bool {
	return p != "" && p != "0" && !strings.Contains(p, "-")
}
