package deploy

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

const oldID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// oldContainer is an inspected container of image img.
func oldContainer() container.InspectResponse {
	return container.InspectResponse{
		ID: oldID, Name: "/web", Image: "sha256:old",
		Config: &container.Config{
			Hostname: "0123456789ab", Image: "app:v1",
			Env:        []string{"PATH=/bin", "MODE=prod"},
			Entrypoint: []string{"/entry"}, Cmd: []string{"run"},
			Labels: map[string]string{"vendor": "acme", "cutover.host": "a.test"},
		},
		HostConfig: &container.HostConfig{NetworkMode: "default", ContainerIDFile: "/tmp/cid"},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"bridge": {NetworkID: "b", IPAMConfig: &network.EndpointIPAMConfig{}},
		}},
	}
}

func oldImage() *image.InspectResponse {
	img := &image.InspectResponse{ID: "sha256:old"}
	img.Config = alloc(img.Config)
	img.Config.Env = []string{"PATH=/bin"}
	img.Config.Entrypoint = []string{"/entry"}
	img.Config.Cmd = []string{"run"}
	img.Config.Labels = map[string]string{"vendor": "acme"}
	return img
}

func build(old container.InspectResponse, img *image.InspectResponse) spec {
	return buildSpec(specInput{old: old, oldImage: img, image: "app:v2", deployID: "1122334455667788",
		at: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))})
}

func TestSpecImageDefaults(t *testing.T) {
	for _, tc := range []struct {
		name           string
		edit           func(*container.Config)
		img            *image.InspectResponse
		env            []string
		entrypoint     []string
		cmd            []string
		label, noLabel string
	}{
		{name: "inherited values are left to the new image", img: oldImage(),
			env: []string{"MODE=prod"}, label: "cutover.host", noLabel: "vendor"},
		{name: "unknown old image: everything is copied", img: nil,
			env: []string{"PATH=/bin", "MODE=prod"}, entrypoint: []string{"/entry"}, cmd: []string{"run"}, label: "vendor"},
		{name: "own command", img: oldImage(), edit: func(c *container.Config) { c.Cmd = []string{"worker"} },
			env: []string{"MODE=prod"}, cmd: []string{"worker"}},
		{name: "own entrypoint keeps the command as it is", img: oldImage(), edit: func(c *container.Config) { c.Entrypoint = []string{"/other"} },
			env: []string{"MODE=prod"}, entrypoint: []string{"/other"}, cmd: []string{"run"}},
		{name: "overridden image label is the container's", img: oldImage(), edit: func(c *container.Config) { c.Labels["vendor"] = "me" },
			env: []string{"MODE=prod"}, label: "vendor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := oldContainer()
			if tc.edit != nil {
				tc.edit(old.Config)
			}
			cfg := build(old, tc.img).create.Config
			if !slices.Equal(cfg.Env, tc.env) || !slices.Equal(cfg.Entrypoint, tc.entrypoint) || !slices.Equal(cfg.Cmd, tc.cmd) {
				t.Errorf("env %q entrypoint %q cmd %q, want %q %q %q", cfg.Env, cfg.Entrypoint, cfg.Cmd, tc.env, tc.entrypoint, tc.cmd)
			}
			if _, ok := cfg.Labels[tc.label]; tc.label != "" && !ok {
				t.Errorf("label %s missing: %v", tc.label, cfg.Labels)
			}
			if _, ok := cfg.Labels[tc.noLabel]; tc.noLabel != "" && ok {
				t.Errorf("label %s copied: %v", tc.noLabel, cfg.Labels)
			}
			if cfg.Hostname != "" || cfg.Image != "app:v2" {
				t.Errorf("hostname %q image %q", cfg.Hostname, cfg.Image)
			}
		})
	}
}

func TestSpecLabels(t *testing.T) {
	sp := build(oldContainer(), oldImage())
	want := map[string]string{"cutover.host": "a.test", labelService: "web", LabelID: "1122334455667788",
		LabelTime: "2026-01-02T02:04:05Z", LabelImage: "app:v2", LabelPrevious: "app:v1", LabelPreviousID: "sha256:old"}
	if !maps.Equal(sp.create.Config.Labels, want) {
		t.Errorf("labels = %v, want %v", sp.create.Config.Labels, want)
	}
	if sp.name != "web-11223344" || sp.create.Name != sp.name {
		t.Errorf("name = %q", sp.name)
	}
}

func TestSpecHealthcheck(t *testing.T) {
	old, img := oldContainer(), oldImage()
	img.Config.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "check"}}
	old.Config.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "check"}}
	if h := build(old, img).create.Config.Healthcheck; h != nil {
		t.Errorf("inherited health check copied: %v", h)
	}
	old.Config.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "check"}, Retries: 5}
	if h := build(old, img).create.Config.Healthcheck; h == nil || h.Retries != 5 {
		t.Errorf("own health check = %v", h)
	}
}

func TestSpecMounts(t *testing.T) {
	old := oldContainer()
	old.HostConfig.Binds = []string{"data:/data:rw", "/etc/app:/etc/app:ro"}
	old.HostConfig.Mounts = []mount.Mount{
		{Type: mount.TypeVolume, Target: "/scratch"},                 // anonymous by --mount
		{Type: mount.TypeVolume, Source: "logs", Target: "/var/log"}, // named by --mount
		{Type: mount.TypeTmpfs, Target: "/tmp"},
	}
	old.Mounts = []container.MountPoint{
		{Type: mount.TypeVolume, Name: "data", Destination: "/data", RW: true},
		{Type: mount.TypeBind, Source: "/etc/app", Destination: "/etc/app"},
		{Type: mount.TypeVolume, Name: "f00d", Destination: "/scratch", RW: true},
		{Type: mount.TypeVolume, Name: "logs", Destination: "/var/log", RW: true},
		{Type: mount.TypeVolume, Name: "beef", Destination: "/cache", RW: false}, // image VOLUME
	}
	hc := build(old, oldImage()).create.HostConfig
	if !slices.Equal(hc.Binds, old.HostConfig.Binds) || hc.ContainerIDFile != "" {
		t.Errorf("binds %v, id file %q", hc.Binds, hc.ContainerIDFile)
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "f00d", Target: "/scratch"},
		{Type: mount.TypeVolume, Source: "logs", Target: "/var/log"},
		{Type: mount.TypeTmpfs, Target: "/tmp"},
		{Type: mount.TypeVolume, Source: "beef", Target: "/cache", ReadOnly: true},
	}
	if len(hc.Mounts) != len(want) {
		t.Fatalf("mounts = %+v", hc.Mounts)
	}
	for i := range want {
		if hc.Mounts[i].Type != want[i].Type || hc.Mounts[i].Source != want[i].Source || hc.Mounts[i].Target != want[i].Target || hc.Mounts[i].ReadOnly != want[i].ReadOnly {
			t.Errorf("mount %d = %+v, want %+v", i, hc.Mounts[i], want[i])
		}
	}
	if old.HostConfig.Mounts[0].Source != "" || old.HostConfig.ContainerIDFile == "" {
		t.Errorf("the old container's config was changed")
	}
}

func TestSpecNetworks(t *testing.T) {
	t.Run("default bridge", func(t *testing.T) {
		sp := build(oldContainer(), nil)
		ep := sp.create.NetworkingConfig.EndpointsConfig["bridge"]
		if ep == nil || ep.IPAMConfig != nil || len(sp.connect) != 0 || sp.create.HostConfig.NetworkMode != "default" {
			t.Errorf("networking = %+v, connect %v", sp.create.NetworkingConfig, sp.connect)
		}
	})
	t.Run("user networks", func(t *testing.T) {
		old := oldContainer()
		old.HostConfig.NetworkMode = "front"
		old.NetworkSettings.Networks = map[string]*network.EndpointSettings{
			"front": {Aliases: []string{"web", oldID[:12]}, IPAMConfig: &network.EndpointIPAMConfig{}, DriverOpts: map[string]string{"a": "b"}, GwPriority: 2},
			"back":  {Aliases: []string{"api", oldID}, Links: []string{"db:db"}},
			"admin": {},
		}
		sp := build(old, nil)
		front := sp.create.NetworkingConfig.EndpointsConfig["front"]
		if len(sp.create.NetworkingConfig.EndpointsConfig) != 1 || !slices.Equal(front.Aliases, []string{"web"}) ||
			front.IPAMConfig != nil || front.DriverOpts["a"] != "b" || front.GwPriority != 2 {
			t.Errorf("create on %+v", sp.create.NetworkingConfig.EndpointsConfig)
		}
		if len(sp.connect) != 2 || sp.connect[0].network != "admin" || sp.connect[1].network != "back" ||
			!slices.Equal(sp.connect[1].endpoint.Aliases, []string{"api"}) || !slices.Equal(sp.connect[1].endpoint.Links, []string{"db:db"}) {
			t.Errorf("connect = %+v", sp.connect)
		}
	})
	t.Run("mode names no network it is on", func(t *testing.T) {
		old := oldContainer()
		old.HostConfig.NetworkMode = "gone"
		old.NetworkSettings.Networks = map[string]*network.EndpointSettings{"b": {}, "a": {}}
		sp := build(old, nil)
		if sp.create.HostConfig.NetworkMode != "a" || sp.create.NetworkingConfig.EndpointsConfig["a"] == nil || len(sp.connect) != 1 {
			t.Errorf("mode %q, create %v, connect %v", sp.create.HostConfig.NetworkMode, sp.create.NetworkingConfig, sp.connect)
		}
		if old.HostConfig.NetworkMode != "gone" {
			t.Errorf("the old container's config was changed")
		}
	})
	for _, mode := range []container.NetworkMode{"host", "none", "container:db"} {
		t.Run(string(mode), func(t *testing.T) {
			old := oldContainer()
			old.HostConfig.NetworkMode = mode
			sp := build(old, nil)
			if sp.create.NetworkingConfig != nil || sp.connect != nil || sp.create.HostConfig.NetworkMode != mode {
				t.Errorf("networking %v connect %v", sp.create.NetworkingConfig, sp.connect)
			}
		})
	}
}

func TestContainerName(t *testing.T) {
	for _, tc := range []struct{ old, oldDeploy, want string }{
		{"web", "", "web-11223344"},
		{"proj-web-1", "", "proj-web-1-11223344"},
		{"proj-web-1-aabbccdd", "aabbccddeeff0011", "proj-web-1-11223344"},
		{"app-deadbeef", "", "app-deadbeef-11223344"},                 // not a suffix of ours
		{"app-deadbeef", "aabbccddeeff0011", "app-deadbeef-11223344"}, // not this deploy's
	} {
		if got := containerName(tc.old, tc.oldDeploy, "1122334455667788"); got != tc.want {
			t.Errorf("containerName(%q, %q) = %q, want %q", tc.old, tc.oldDeploy, got, tc.want)
		}
	}
}

func TestPinService(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   map[string]string
	}{
		{"service label", map[string]string{labelService: "api"}, nil},
		{"compose", map[string]string{labelComposeProject: "p", labelComposeService: "web"}, nil},
		{"container name", map[string]string{"cutover.host": "a.test"}, map[string]string{labelService: "web"}},
		{"no labels", nil, map[string]string{labelService: "web"}},
		{"named routes", map[string]string{"cutover.routes.api.host": "a.test", "cutover.routes.adm.service": "admin", "cutover.routes.adm.path": "/"},
			map[string]string{labelService: "web", "cutover.routes.api.service": "web-api"}},
		{"compose project only", map[string]string{labelComposeProject: "p"}, map[string]string{labelService: "web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pinService(tc.labels, "web"); !maps.Equal(got, tc.want) {
				t.Errorf("pinService = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestServiceCandidates(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{nil, []string{"web-1"}},
		{map[string]string{labelService: "api"}, []string{"api", "web-1"}},
		{map[string]string{labelComposeProject: "p", labelComposeService: "web"}, []string{"p-web"}},
		{map[string]string{labelComposeProject: "p", labelComposeService: "web", "cutover.routes.x.host": "h", "cutover.routes.y.service": "why"},
			[]string{"p-web", "p-web-x", "why"}},
	} {
		if got := serviceCandidates(tc.labels, "web-1"); !slices.Equal(got, tc.want) {
			t.Errorf("serviceCandidates(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}

func TestStartFirstConflict(t *testing.T) {
	p := network.MustParsePort("8080/tcp")
	for _, tc := range []struct {
		name string
		hc   container.HostConfig
		want string
	}{
		{"no ports", container.HostConfig{}, ""},
		{"random host port", container.HostConfig{PortBindings: network.PortMap{p: {{HostPort: ""}, {HostPort: "0"}}}}, ""},
		{"range", container.HostConfig{PortBindings: network.PortMap{p: {{HostPort: "8000-8010"}}}}, ""},
		{"fixed", container.HostConfig{PortBindings: network.PortMap{p: {{HostPort: "80"}}}}, "publishes host port 80 (for its port 8080/tcp)"},
		{"host network", container.HostConfig{NetworkMode: "host"}, "uses the host network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := startFirstConflict([]container.InspectResponse{{Name: "/web", HostConfig: &tc.hc}}, Rolling)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Service: "web"}, ""},
		{Request{Service: "web", Strategy: BlueGreen, Batch: 2, DrainTimeout: time.Second}, ""},
		{Request{}, "service: a service name is required"},
		{Request{Service: "web", Strategy: "canary"}, `strategy: "canary": want rolling, blue-green or recreate`},
		{Request{Service: "web", Batch: -2}, "batch -2"},
		{Request{Service: "web", HealthTimeout: -time.Second}, "health timeout -1s: want a positive duration"},
	} {
		err := tc.req.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.req, err, tc.want)
		}
	}
	r := Request{Service: "web"}.withDefaults()
	if r.Batch != DefaultBatch || r.DrainTimeout != DefaultDrainTimeout || r.HealthTimeout != DefaultHealthTimeout || r.MaxPause != DefaultMaxPause || r.Strategy != "" {
		t.Errorf("defaults = %+v", r)
	}
}
