package deploy

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// spec is how to create the container that replaces an old one.
type spec struct {
	name   string
	create client.ContainerCreateOptions
	// connect lists the networks to connect it to after it is created and
	// before it starts: create takes one network only.
	connect []netConnect
}

type netConnect struct {
	network  string
	endpoint *network.EndpointSettings
}

// specInput is what buildSpec copies from.
type specInput struct {
	old container.InspectResponse
	// oldImage is the old container's image; nil when unknown.
	oldImage *image.InspectResponse
	image    string // the new image reference
	deployID string
	at       time.Time
}

// buildSpec returns the spec of a copy of in.old that runs in.image. It is
// a pure function; see the package doc for what is copied and why.
func buildSpec(in specInput) spec {
	name := containerName(dockerName(in.old.Name), in.old.Config.Labels[LabelID], in.deployID)
	hc := copyHostConfig(in.old)
	ep, connect := endpoints(in.old, hc)
	return spec{
		name: name,
		create: client.ContainerCreateOptions{
			Name:             name,
			Config:           copyConfig(in),
			HostConfig:       hc,
			NetworkingConfig: ep,
		},
		connect: connect,
	}
}

// copyConfig copies the old container's config without what it inherited
// from its image, with the new image and the deploy labels.
func copyConfig(in specInput) *container.Config {
	oc := in.old.Config
	var ic imageDefaults
	if in.oldImage != nil && in.oldImage.Config != nil {
		c := in.oldImage.Config
		ic = imageDefaults{user: c.User, env: c.Env, entrypoint: c.Entrypoint, cmd: c.Cmd, workingDir: c.WorkingDir,
			labels: c.Labels, stopSignal: c.StopSignal, ports: c.ExposedPorts, health: c.Healthcheck}
	}
	cfg := &container.Config{
		Domainname:      oc.Domainname,
		User:            unless(oc.User, ic.user),
		ExposedPorts:    portsWithout(oc.ExposedPorts, ic.ports),
		Tty:             oc.Tty,
		OpenStdin:       oc.OpenStdin,
		StdinOnce:       oc.StdinOnce,
		Env:             without(oc.Env, ic.env),
		Image:           in.image,
		WorkingDir:      unless(oc.WorkingDir, ic.workingDir),
		NetworkDisabled: oc.NetworkDisabled,
		Labels:          labelsWithout(oc.Labels, ic.labels),
		StopSignal:      unless(oc.StopSignal, ic.stopSignal),
	}
	if oc.StopTimeout != nil {
		t := *oc.StopTimeout
		cfg.StopTimeout = &t
	}
	if oc.Healthcheck != nil && (ic.health == nil || !reflect.DeepEqual(*oc.Healthcheck, *ic.health)) {
		h := *oc.Healthcheck
		cfg.Healthcheck = &h
	}
	// Docker drops the image's CMD when a container sets its own
	// entrypoint: then the command is the container's, whatever it is.
	if slices.Equal(oc.Entrypoint, ic.entrypoint) {
		if !slices.Equal(oc.Cmd, ic.cmd) {
			cfg.Cmd = slices.Clone(oc.Cmd)
		}
	} else {
		cfg.Entrypoint = slices.Clone(oc.Entrypoint)
		cfg.Cmd = slices.Clone(oc.Cmd)
	}
	maps.Copy(cfg.Labels, pinService(oc.Labels, dockerName(in.old.Name)))
	cfg.Labels[LabelID] = in.deployID
	cfg.Labels[LabelTime] = in.at.UTC().Format(time.RFC3339)
	cfg.Labels[LabelImage] = in.image
	cfg.Labels[LabelPrevious] = oc.Image
	cfg.Labels[LabelPreviousID] = in.old.Image
	return cfg
}

// imageDefaults are the settings a container inherits from its image.
type imageDefaults struct {
	user, workingDir, stopSignal string
	env, entrypoint, cmd         []string
	labels                       map[string]string
	ports                        map[string]struct{}
	health                       *container.HealthConfig
}

func unless(v, inherited string) string {
	if v == inherited {
		return ""
	}
	return v
}

// without returns the entries of vs that are not in inherited.
func without(vs, inherited []string) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(inherited, v) {
			out = append(out, v)
		}
	}
	return out
}

// labelsWithout returns the labels that the image does not set to the
// same value; never nil.
func labelsWithout(labels, inherited map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if iv, ok := inherited[k]; !ok || iv != v {
			out[k] = v
		}
	}
	return out
}

func portsWithout(ports network.PortSet, inherited map[string]struct{}) network.PortSet {
	var out network.PortSet
	for p := range ports {
		if _, ok := inherited[p.String()]; ok {
			continue
		}
		if out == nil {
			out = network.PortSet{}
		}
		out[p] = struct{}{}
	}
	return out
}

// copyHostConfig copies the old container's host config. Every volume
// the old container has, named or anonymous, is mounted by name at the
// same path, so the data carries over; the ID file is not copied (it
// would exist already).
func copyHostConfig(old container.InspectResponse) *container.HostConfig {
	hc := *old.HostConfig
	hc.ContainerIDFile = ""
	covered := map[string]bool{}
	for _, b := range hc.Binds {
		if dst, ok := bindTarget(b); ok {
			covered[dst] = true
		}
	}
	var mounts []mount.Mount
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source == "" {
			// An anonymous volume by --mount: mount the one it got.
			if mp, ok := mountPointAt(old.Mounts, m.Target); ok && mp.Name != "" {
				m.Source = mp.Name
			}
		}
		covered[m.Target] = true
		mounts = append(mounts, m)
	}
	for _, mp := range old.Mounts {
		if mp.Type != mount.TypeVolume || mp.Name == "" || covered[mp.Destination] {
			continue
		}
		covered[mp.Destination] = true
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: mp.Name, Target: mp.Destination, ReadOnly: !mp.RW})
	}
	hc.Mounts = mounts
	return &hc
}

// bindTarget is the container path of a bind ("src:dst[:opts]").
func bindTarget(bind string) (string, bool) {
	parts := strings.Split(bind, ":")
	if len(parts) < 2 {
		return "", false
	}
	return parts[1], true
}

func mountPointAt(mps []container.MountPoint, dst string) (container.MountPoint, bool) {
	for _, mp := range mps {
		if mp.Destination == dst {
			return mp, true
		}
	}
	return container.MountPoint{}, false
}

// endpoints returns the network the new container is created on and the
// ones to connect it to, with the old one's aliases, links, driver options
// and gateway priority, but not its addresses or ID alias. hc.NetworkMode
// is set to the network created on.
func endpoints(old container.InspectResponse, hc *container.HostConfig) (*network.NetworkingConfig, []netConnect) {
	mode := hc.NetworkMode
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() || old.NetworkSettings == nil || len(old.NetworkSettings.Networks) == 0 {
		return nil, nil
	}
	nets := old.NetworkSettings.Networks
	primary := string(mode)
	if mode == "" || mode.IsDefault() {
		primary = network.NetworkBridge
	}
	names := slices.Sorted(maps.Keys(nets))
	if nets[primary] == nil {
		primary = names[0]
		hc.NetworkMode = container.NetworkMode(primary)
	}
	cfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		primary: endpointCopy(old.ID, nets[primary]),
	}}
	var connect []netConnect
	for _, n := range names {
		if n != primary {
			connect = append(connect, netConnect{network: n, endpoint: endpointCopy(old.ID, nets[n])})
		}
	}
	return cfg, connect
}

func endpointCopy(oldID string, ep *network.EndpointSettings) *network.EndpointSettings {
	out := &network.EndpointSettings{GwPriority: ep.GwPriority}
	for _, a := range ep.Aliases {
		if len(a) >= 12 && strings.HasPrefix(oldID, a) {
			continue // the ID alias Docker gave the old container
		}
		out.Aliases = append(out.Aliases, a)
	}
	out.Links = slices.Clone(ep.Links)
	if ep.DriverOpts != nil {
		out.DriverOpts = maps.Clone(ep.DriverOpts)
	}
	return out
}
