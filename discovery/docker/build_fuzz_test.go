package docker

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// Bits of FuzzBuild's flags.
const (
	fzRunning = 1 << iota
	fzPaused
	fzStopping
	fzExposeByDefault
	fzCompat
	fzInContainer
	fzHostMode
	fzContainerMode
	fzIPv6
	fzSecondNetwork
	fzNoAddress
	fzStarting
	fzUnhealthy
	fzSelf
	fzTwoPorts
)

// FuzzBuild builds two containers from fuzzed labels (one key=value a
// line; "cutover." is added unless the key starts with "@"), environment
// (VIRTUAL_HOST, VIRTUAL_PORT and VIRTUAL_PATH, one a line), flags and an
// exposed port, and checks that build never panics, does not depend on
// the order of its input, and returns a consistent snapshot.
func FuzzBuild(f *testing.F) {
	for _, s := range []struct {
		labels, env string
		flags       uint16
		port        uint16
	}{
		{"enable=true\nhost=example.com", "", fzRunning, 80},
		{"enable=true\nroutes.a.host=a.com\nroutes.a.port=8080\nroutes.b.path=/b\nbalance=leastconn", "", fzRunning | fzInContainer | fzSecondNetwork, 80},
		{"@com.docker.compose.project=shop\n@com.docker.compose.service=web\nhost=shop.com\nhealth.path=/up", "", fzRunning | fzExposeByDefault, 0},
		{"network=back\nhost=*.example.com\nport=99999", "x.com,y.com\n8080\n/app", fzRunning | fzCompat | fzIPv6, 3000},
		{"enable=yes\nhots=x", "", fzRunning | fzExposeByDefault | fzHostMode, 80},
		{"enable=true\nservice=web\nroutes.x.service=web\nroutes.x.weight=3", "", fzRunning | fzStopping | fzTwoPorts, 80},
	} {
		f.Add(s.labels, s.env, s.flags, s.port)
	}
	f.Fuzz(func(t *testing.T, labels, env string, flags, port uint16) {
		a := fuzzContainer("a", labels, env, flags, port)
		b := fuzzContainer("b", labels, env, flags^fzIPv6, port)
		b.Networks["app"] = netip.MustParseAddr("10.0.0.3")
		opts := options{ExposeByDefault: flags&fzExposeByDefault != 0, CompatNginxProxy: flags&fzCompat != 0}
		if flags&fzInContainer != 0 {
			opts.Self = self{InContainer: true, ID: "id-cutover", Networks: []string{"app"}}
		}
		snap := build([]container{a, b}, opts)
		if again := build([]container{b, a}, opts); !again.Equal(snap) {
			t.Fatalf("order matters (- a, b; + b, a):\n%s", diffLines(renderSnap(snap), renderSnap(again)))
		}
		if flags&fzRunning == 0 && (len(snap.Services) != 0 || len(snap.Problems) != 0) {
			t.Fatalf("containers that do not run gave %+v", snap)
		}
		checkBuilt(t, snap, []container{a, b})
	})
}

func fuzzContainer(name, labels, env string, flags, port uint16) container {
	c := container{
		ID: "id-" + name, Name: name, Labels: map[string]string{},
		Running: flags&fzRunning != 0, Paused: flags&fzPaused != 0, Stopping: flags&fzStopping != 0,
		Networks: map[string]netip.Addr{"app": netip.MustParseAddr("10.0.0.2")}, NetworkMode: "app",
	}
	for line := range strings.Lines(labels) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if raw, ok := strings.CutPrefix(k, "@"); ok {
			c.Labels[raw] = v
		} else {
			c.Labels[labelPrefix+k] = v
		}
	}
	vars := strings.SplitN(env, "\n", 3)
	for i, name := range []string{"VIRTUAL_HOST", "VIRTUAL_PORT", "VIRTUAL_PATH"} {
		if i < len(vars) {
			if c.Env == nil {
				c.Env = map[string]string{}
			}
			c.Env[name] = vars[i]
		}
	}
	switch {
	case flags&fzHostMode != 0:
		c.NetworkMode, c.Networks = "host", map[string]netip.Addr{"host": {}}
	case flags&fzContainerMode != 0:
		c.NetworkMode, c.Networks = "container:id-x", map[string]netip.Addr{}
	}
	if flags&fzIPv6 != 0 {
		c.Networks["app"] = netip.MustParseAddr("fd00::2")
	}
	if flags&fzSecondNetwork != 0 {
		c.Networks["back"] = netip.MustParseAddr("10.1.0.2")
		if flags&fzNoAddress != 0 {
			c.Networks["back"] = netip.Addr{}
		}
	}
	switch {
	case flags&fzStarting != 0:
		c.Health = "starting"
	case flags&fzUnhealthy != 0:
		c.Health = "unhealthy"
	}
	if flags&fzSelf != 0 && name == "a" {
		c.ID = "id-cutover"
	}
	if port != 0 {
		c.ExposedPorts = []int{int(port)}
		if flags&fzTwoPorts != 0 && port < 65535 {
			c.ExposedPorts = append(c.ExposedPorts, int(port)+1)
		}
	}
	return c
}

// checkBuilt checks the invariants of a snapshot built from cs.
func checkBuilt(t *testing.T, snap discovery.Snapshot, cs []container) {
	t.Helper()
	owner := map[discovery.Route]string{}
	for i, svc := range snap.Services {
		if _, err := discovery.ParseServiceName(svc.Name); err != nil || svc.Provider != "docker" {
			t.Fatalf("service %q of provider %q", svc.Name, svc.Provider)
		}
		if i > 0 && snap.Services[i-1].Name >= svc.Name {
			t.Fatalf("services not sorted or not unique: %q, %q", snap.Services[i-1].Name, svc.Name)
		}
		if len(svc.Endpoints) == 0 {
			t.Fatalf("service %q has no endpoint", svc.Name)
		}
		for _, r := range svc.Routes {
			if prev, ok := owner[r]; ok {
				t.Fatalf("route %v in services %q and %q", r, prev, svc.Name)
			}
			owner[r] = svc.Name
		}
		ids := map[string]bool{}
		for _, ep := range svc.Endpoints {
			if ids[ep.ID] || !validEndpoint(ep, cs) {
				t.Fatalf("service %q: bad or repeated endpoint %+v", svc.Name, ep)
			}
			ids[ep.ID] = true
		}
	}
	for _, p := range snap.Problems {
		if p.Provider != "docker" || p.Source == "" || p.Message == "" {
			t.Fatalf("problem without provider, source or message: %#v", p)
		}
	}
}

// validEndpoint reports whether ep has a dialable address and the ID and
// name of one of cs on the address's port.
func validEndpoint(ep discovery.Endpoint, cs []container) bool {
	ap, err := netip.ParseAddrPort(ep.Address)
	if err != nil || !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 || ap.String() != ep.Address {
		return false
	}
	if ep.Weight < 1 || ep.Weight > 1000 || ep.State > discovery.Draining {
		return false
	}
	p := ":" + strconv.Itoa(int(ap.Port()))
	for _, c := range cs {
		if ep.ID == c.ID+p && ep.Name == c.Name+p {
			return true
		}
	}
	return false
}
