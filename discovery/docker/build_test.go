package docker

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// newCtr returns a running container named name, with the ID "id-"+name,
// on the network "app" at ip, exposing TCP port 80, with labels given as
// "key=value".
func newCtr(name, ip string, labels ...string) container {
	c := container{
		ID: "id-" + name, Name: name, Running: true, Labels: map[string]string{},
		ExposedPorts: []int{80}, NetworkMode: "app",
		Networks: map[string]netip.Addr{"app": netip.MustParseAddr(ip)},
	}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		c.Labels[k] = v
	}
	return c
}

// modCtr returns c changed by fn.
func modCtr(c container, fn func(*container)) container {
	fn(&c)
	return c
}

// compose adds the labels that Docker Compose sets.
func compose(project, service string) func(*container) {
	return func(c *container) {
		c.Labels[labelComposeProject] = project
		c.Labels[labelComposeService] = service
	}
}

func nets(kv ...string) map[string]netip.Addr {
	m := map[string]netip.Addr{}
	for i := 0; i < len(kv); i += 2 {
		var a netip.Addr
		if kv[i+1] != "" {
			a = netip.MustParseAddr(kv[i+1])
		}
		m[kv[i]] = a
	}
	return m
}

func rt(host, path string) discovery.Route { return discovery.Route{Host: host, Path: path} }

func routes(rs ...discovery.Route) []discovery.Route { return rs }

// wantEp is the ready endpoint of weight 1 of the container name (as made
// by newCtr) on port at addr.
func wantEp(name string, port int, addr string) discovery.Endpoint {
	p := fmt.Sprint(port)
	return discovery.Endpoint{ID: "id-" + name + ":" + p, Name: name + ":" + p, Address: addr, Weight: 1}
}

func withState(e discovery.Endpoint, s discovery.EndpointState) discovery.Endpoint {
	e.State = s
	return e
}

func wantSvc(name string, rs []discovery.Route, eps ...discovery.Endpoint) discovery.Service {
	return discovery.Service{Name: name, Provider: "docker", Routes: rs, Endpoints: eps}
}

func wantProb(container, key, msg string) discovery.Problem {
	return discovery.Problem{Provider: "docker", Source: "container " + container, Key: key, Message: msg}
}

var (
	onHost      = options{}
	inContainer = options{Self: self{InContainer: true, ID: "id-cutover", Networks: []string{"app"}}}
)

type buildCase struct {
	name string
	opts options
	cs   []container
	want discovery.Snapshot
}

func buildCases() []buildCase {
	leastconn := discovery.Options{Balance: discovery.Balance{Policy: discovery.LeastConn}}
	known := strings.Join(discovery.KnownKeys(), ", ")
	longName := strings.Repeat("x", 129)
	selfID := "0123456789ab" + strings.Repeat("cdef", 13)
	return []buildCase{
		{
			name: "opt-in: enabled container routed, unlabelled and enable=false skipped silently",
			opts: onHost,
			cs: []container{
				newCtr("web", "10.0.0.2", "cutover.enable=true", "cutover.host=example.com"),
				newCtr("db", "10.0.0.3"),
				newCtr("off", "10.0.0.4", "cutover.enable=false", "cutover.host=off.example.com"),
				newCtr("other", "10.0.0.5", "traefik.enable=true"),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("web", routes(rt("example.com", "/")), wantEp("web", 80, "10.0.0.2:80")),
			}},
		},
		{
			name: "cutover labels without cutover.enable are reported and not routed",
			opts: onHost,
			cs:   []container{newCtr("web", "10.0.0.2", "cutover.host=example.com", "cutover.port=bad")},
			want: discovery.Snapshot{Problems: []discovery.Problem{wantProb("web", "cutover.enable",
				"the container has cutover labels but is not enabled: set cutover.enable=true to route it (or cutover.enable=false to silence this)")}},
		},
		{
			name: "expose by default: every container but enable=false; no labels is the catch-all",
			opts: options{ExposeByDefault: true},
			cs: []container{
				newCtr("web", "10.0.0.2", "cutover.host=example.com"),
				newCtr("db", "10.0.0.3"),
				newCtr("off", "10.0.0.4", "cutover.enable=false"),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("db", routes(rt("", "/")), wantEp("db", 80, "10.0.0.3:80")),
				wantSvc("web", routes(rt("example.com", "/")), wantEp("web", 80, "10.0.0.2:80")),
			}},
		},
		{
			name: "a mistyped cutover.enable is reported and never routed, even by default",
			opts: options{ExposeByDefault: true},
			cs:   []container{newCtr("web", "10.0.0.2", "cutover.enable=flase", "cutover.host=example.com")},
			want: discovery.Snapshot{Problems: []discovery.Problem{
				wantProb("web", "cutover.enable", `"flase": want true or false`),
			}},
		},
		{
			name: "cutover's own container is never routed",
			opts: options{ExposeByDefault: true, Self: self{InContainer: true, ID: "id-cutover", Networks: []string{"app"}}},
			cs: []container{
				newCtr("cutover", "10.0.0.1", "cutover.enable=true", "cutover.host=bad:host"),
				newCtr("web", "10.0.0.2", "cutover.host=example.com"),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("web", routes(rt("example.com", "/")), wantEp("web", 80, "10.0.0.2:80")),
			}},
		},
		{
			name: "cutover's own container known by its short ID",
			opts: options{ExposeByDefault: true, Self: self{InContainer: true, ID: selfID[:12], Networks: []string{"app"}}},
			cs: []container{
				modCtr(newCtr("cutover", "10.0.0.1"), func(c *container) { c.ID = selfID }),
			},
		},
		{
			name: "short form and named routes with their own ports",
			opts: onHost,
			cs: []container{newCtr("app", "10.0.0.2", "cutover.enable=true",
				"cutover.host=app.example.com", "cutover.port=8080",
				"cutover.routes.admin.host=admin.example.com", "cutover.routes.admin.port=9000",
				"cutover.routes.metrics.path=/metrics", "cutover.routes.metrics.port=9100")},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("app", routes(rt("app.example.com", "/")), wantEp("app", 8080, "10.0.0.2:8080")),
				wantSvc("app-admin", routes(rt("admin.example.com", "/")), wantEp("app", 9000, "10.0.0.2:9000")),
				wantSvc("app-metrics", routes(rt("app.example.com", "/metrics")), wantEp("app", 9100, "10.0.0.2:9100")),
			}},
		},
		{
			name: "three Compose replicas form the service <project>-<service>",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("shop-web-3", "10.0.0.4", "cutover.enable=true", "cutover.host=shop.example.com"), compose("shop", "web")),
				modCtr(newCtr("shop-web-1", "10.0.0.2", "cutover.enable=true", "cutover.host=shop.example.com"), compose("shop", "web")),
				modCtr(newCtr("shop-web-2", "10.0.0.3", "cutover.enable=true", "cutover.host=shop.example.com"), compose("shop", "web")),
				modCtr(newCtr("shop-admin-1", "10.0.0.5", "cutover.enable=true", "cutover.routes.ui.host=admin.example.com"), compose("shop", "admin")),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("shop-admin-ui", routes(rt("admin.example.com", "/")), wantEp("shop-admin-1", 80, "10.0.0.5:80")),
				wantSvc("shop-web", routes(rt("shop.example.com", "/")),
					wantEp("shop-web-1", 80, "10.0.0.2:80"), wantEp("shop-web-2", 80, "10.0.0.3:80"), wantEp("shop-web-3", 80, "10.0.0.4:80")),
			}},
		},
		{
			name: "cutover.service groups across Compose projects; a named route with a service key joins it",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("a-api-1", "10.0.0.2", "cutover.enable=true", "cutover.service=api", "cutover.host=api.example.com"), compose("a", "api")),
				modCtr(newCtr("b-api-1", "10.0.0.3", "cutover.enable=true", "cutover.service=api", "cutover.host=api.example.com"), compose("b", "api")),
				newCtr("c", "10.0.0.4", "cutover.enable=true", "cutover.routes.v2.service=api",
					"cutover.routes.v2.path=/v2", "cutover.routes.v2.port=8080", "cutover.routes.web.host=c.example.com"),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("api", routes(rt("", "/v2"), rt("api.example.com", "/")),
					wantEp("a-api-1", 80, "10.0.0.2:80"), wantEp("b-api-1", 80, "10.0.0.3:80"), wantEp("c", 8080, "10.0.0.4:8080")),
				wantSvc("c-web", routes(rt("c.example.com", "/")), wantEp("c", 80, "10.0.0.4:80")),
			}},
		},
		{
			name: "two routes to one port of one service are one endpoint with the first weight",
			opts: onHost,
			cs: []container{newCtr("app", "10.0.0.2", "cutover.enable=true", "cutover.service=web",
				"cutover.routes.a.host=a.example.com", "cutover.routes.b.host=b.example.com", "cutover.routes.b.weight=5")},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("web", routes(rt("a.example.com", "/"), rt("b.example.com", "/")), wantEp("app", 80, "10.0.0.2:80")),
				},
				Problems: []discovery.Problem{wantProb("app", "cutover.routes.b.weight",
					"service web: backend app:80 has weight 1 on another route; 1 is used: give it one weight")},
			},
		},
		{
			name: "port from the only exposed port; a missing port lists the exposed ones",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("one", "10.0.0.2", "cutover.enable=true", "cutover.host=one.example.com"),
					func(c *container) { c.ExposedPorts = []int{8080} }),
				modCtr(newCtr("many", "10.0.0.3", "cutover.enable=true", "cutover.host=many.example.com"),
					func(c *container) { c.ExposedPorts = []int{80, 443, 8080} }),
				modCtr(newCtr("none", "10.0.0.4", "cutover.enable=true", "cutover.host=none.example.com"),
					func(c *container) { c.ExposedPorts = nil }),
				modCtr(newCtr("named", "10.0.0.5", "cutover.enable=true", "cutover.routes.api.host=api.example.com",
					"cutover.routes.web.host=web.example.com", "cutover.routes.web.port=80"),
					func(c *container) { c.ExposedPorts = []int{80, 443} }),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("named-web", routes(rt("web.example.com", "/")), wantEp("named", 80, "10.0.0.5:80")),
					wantSvc("one", routes(rt("one.example.com", "/")), wantEp("one", 8080, "10.0.0.2:8080")),
				},
				Problems: []discovery.Problem{
					wantProb("many", "cutover.port", "no cutover.port label and the container exposes 3 TCP ports (80, 443, 8080): set cutover.port to one of them"),
					wantProb("named", "cutover.routes.api.port", "no cutover.routes.api.port label and the container exposes 2 TCP ports (80, 443): set cutover.routes.api.port to one of them"),
					wantProb("none", "cutover.port", "no cutover.port label and the container exposes no TCP port: set cutover.port"),
				},
			},
		},
		{
			name: "the network a label names",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("multi", "10.0.0.2", "cutover.enable=true", "cutover.host=multi.example.com", "cutover.network=back"),
					func(c *container) { c.Networks = nets("app", "10.0.0.2", "back", "10.1.0.2") }),
				newCtr("stray", "10.0.0.3", "cutover.enable=true", "cutover.host=stray.example.com", "cutover.network=nope"),
				modCtr(newCtr("noaddr", "10.0.0.4", "cutover.enable=true", "cutover.host=noaddr.example.com", "cutover.network=back"),
					func(c *container) { c.Networks = nets("app", "10.0.0.4", "back", "") }),
				newCtr("routed", "10.0.0.5", "cutover.enable=true", "cutover.routes.a.host=a.example.com", "cutover.routes.a.network=app",
					"cutover.routes.b.host=b.example.com", "cutover.routes.b.network=front"),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("multi", routes(rt("multi.example.com", "/")), wantEp("multi", 80, "10.1.0.2:80")),
					wantSvc("routed-a", routes(rt("a.example.com", "/")), wantEp("routed", 80, "10.0.0.5:80")),
				},
				Problems: []discovery.Problem{
					wantProb("noaddr", "cutover.network", `the container has no IP address on network "back": attach it with an address or change cutover.network`),
					wantProb("routed", "cutover.routes.b.network", `the container is not on network "front" (it is on: app): connect it or change cutover.routes.b.network`),
					wantProb("stray", "cutover.network", `the container is not on network "nope" (it is on: app): connect it or change cutover.network`),
				},
			},
		},
		{
			name: "in a container, the named network must be one cutover is on",
			opts: inContainer,
			cs: []container{
				modCtr(newCtr("multi", "10.0.0.2", "cutover.enable=true", "cutover.network=back"),
					func(c *container) { c.Networks = nets("app", "10.0.0.2", "back", "10.1.0.2") }),
			},
			want: discovery.Snapshot{Problems: []discovery.Problem{wantProb("multi", "cutover.network",
				`cutover is not on network "back" (cutover is on: app): connect cutover to it or change cutover.network`)}},
		},
		{
			name: "in a container, the first network by name shared with cutover that has an address",
			opts: options{Self: self{InContainer: true, ID: "id-cutover", Networks: []string{"zeta", "delta", "beta", "app"}}},
			cs: []container{
				modCtr(newCtr("web", "10.0.0.2", "cutover.enable=true", "cutover.host=web.example.com"),
					func(c *container) {
						c.Networks = nets("alpha", "10.9.0.2", "zeta", "10.3.0.2", "delta", "10.2.0.2", "gamma", "10.4.0.2")
					}),
				modCtr(newCtr("api", "10.0.0.2", "cutover.enable=true", "cutover.host=api.example.com"),
					func(c *container) { c.Networks = nets("beta", "", "delta", "10.2.0.3", "zeta", "10.3.0.3") }),
				modCtr(newCtr("void", "10.0.0.2", "cutover.enable=true", "cutover.host=void.example.com"),
					func(c *container) { c.Networks = nets("beta", "", "other", "10.5.0.2") }),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("api", routes(rt("api.example.com", "/")), wantEp("api", 80, "10.2.0.3:80")),
					wantSvc("web", routes(rt("web.example.com", "/")), wantEp("web", 80, "10.2.0.2:80")),
				},
				Problems: []discovery.Problem{wantProb("void", "",
					"the container has no IP address on the networks it shares with cutover (beta): attach it with an address or set cutover.network")},
			},
		},
		{
			name: "in a container, a container that shares no network is reported once and not routed",
			opts: options{Self: self{InContainer: true, ID: "id-cutover", Networks: []string{"front", "app"}}},
			cs: []container{
				modCtr(newCtr("lonely", "10.0.0.2", "cutover.enable=true", "cutover.host=lonely.example.com", "cutover.routes.x.path=/x"),
					func(c *container) { c.Networks = nets("other", "10.7.0.2") }),
				newCtr("web", "10.0.0.3", "cutover.enable=true", "cutover.host=web.example.com"),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("web", routes(rt("web.example.com", "/")), wantEp("web", 80, "10.0.0.3:80")),
				},
				Problems: []discovery.Problem{wantProb("lonely", "",
					"the container shares no network with cutover (cutover is on: app, front; the container on: other): connect them or set cutover.network")},
			},
		},
		{
			name: "on the host, the first network by name that has an address",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("web", "10.0.0.2", "cutover.enable=true", "cutover.host=web.example.com"),
					func(c *container) { c.Networks = nets("c-net", "10.3.0.2", "a-net", "", "b-net", "10.2.0.2") }),
				modCtr(newCtr("isolated", "10.0.0.2", "cutover.enable=true", "cutover.host=isolated.example.com"),
					func(c *container) { c.Networks, c.NetworkMode = nil, "none" }),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("web", routes(rt("web.example.com", "/")), wantEp("web", 80, "10.2.0.2:80")),
				},
				Problems: []discovery.Problem{wantProb("isolated", "",
					"the container has no IP address on any network (it is on: none): attach it to a network")},
			},
		},
		{
			name: "network mode host on the host is 127.0.0.1; network mode container: is reported",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("hosted", "10.0.0.2", "cutover.enable=true", "cutover.host=hosted.example.com", "cutover.port=3000"),
					func(c *container) { c.Networks, c.NetworkMode = nets("host", ""), "host" }),
				modCtr(newCtr("odd", "10.0.0.2", "cutover.enable=true", "cutover.host=odd.example.com", "cutover.network=app"),
					func(c *container) { c.Networks, c.NetworkMode = nets("host", ""), "host" }),
				modCtr(newCtr("sidecar", "10.0.0.2", "cutover.enable=true", "cutover.host=sidecar.example.com"),
					func(c *container) { c.Networks, c.NetworkMode = nil, "container:0123abcd" }),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("hosted", routes(rt("hosted.example.com", "/")), wantEp("hosted", 3000, "127.0.0.1:3000")),
				},
				Problems: []discovery.Problem{
					wantProb("odd", "cutover.network", `the container uses the host's network (network mode host) and is on no network "app": remove cutover.network`),
					wantProb("sidecar", "", "the container uses the network stack of another container (network mode container:0123abcd): route that container instead"),
				},
			},
		},
		{
			name: "network mode host is unreachable from cutover in a container",
			opts: inContainer,
			cs: []container{
				modCtr(newCtr("hosted", "10.0.0.2", "cutover.enable=true", "cutover.port=3000"),
					func(c *container) { c.Networks, c.NetworkMode = nets("host", ""), "host" }),
			},
			want: discovery.Snapshot{Problems: []discovery.Problem{wantProb("hosted", "",
				"the container uses the host's network (network mode host), which cutover cannot reach from its own container: "+
					"attach the container to a network cutover is on (app), or run cutover with network mode host")}},
		},
		{
			name: "cutover in a container on the host network reaches both network modes",
			opts: options{Self: self{InContainer: true, ID: "id-cutover", Networks: []string{"host"}}},
			cs: []container{
				modCtr(newCtr("hosted", "10.0.0.2", "cutover.enable=true", "cutover.host=hosted.example.com", "cutover.port=3000"),
					func(c *container) { c.Networks, c.NetworkMode = nets("host", ""), "host" }),
				newCtr("bridged", "172.17.0.2", "cutover.enable=true", "cutover.host=bridged.example.com"),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("bridged", routes(rt("bridged.example.com", "/")), wantEp("bridged", 80, "172.17.0.2:80")),
				wantSvc("hosted", routes(rt("hosted.example.com", "/")), wantEp("hosted", 3000, "127.0.0.1:3000")),
			}},
		},
		{
			name: "IPv6 addresses in brackets, IPv4-mapped ones unmapped",
			opts: onHost,
			cs: []container{
				newCtr("six", "fd00::2", "cutover.enable=true", "cutover.host=six.example.com", "cutover.port=8080"),
				newCtr("mapped", "::ffff:10.0.0.9", "cutover.enable=true", "cutover.host=mapped.example.com"),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("mapped", routes(rt("mapped.example.com", "/")), wantEp("mapped", 80, "10.0.0.9:80")),
				wantSvc("six", routes(rt("six.example.com", "/")), wantEp("six", 8080, "[fd00::2]:8080")),
			}},
		},
		{
			name: "states from stopping, paused and Docker health; stopped containers skipped",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("a", "10.0.0.2", "cutover.enable=true", "cutover.service=app"), func(c *container) { c.Stopping = true }),
				modCtr(newCtr("b", "10.0.0.3", "cutover.enable=true", "cutover.service=app"), func(c *container) { c.Paused = true }),
				modCtr(newCtr("c", "10.0.0.4", "cutover.enable=true", "cutover.service=app"), func(c *container) { c.Health = "starting" }),
				modCtr(newCtr("d", "10.0.0.5", "cutover.enable=true", "cutover.service=app"), func(c *container) { c.Health = "unhealthy" }),
				modCtr(newCtr("e", "10.0.0.6", "cutover.enable=true", "cutover.service=app"), func(c *container) { c.Health = "healthy" }),
				modCtr(newCtr("f", "10.0.0.7", "cutover.enable=true", "cutover.service=app"), func(c *container) { c.Stopping, c.Health = true, "unhealthy" }),
				newCtr("g", "10.0.0.8", "cutover.enable=true", "cutover.service=app"),
				modCtr(newCtr("h", "10.0.0.9", "cutover.enable=true", "cutover.port=bad"), func(c *container) { c.Running = false }),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				wantSvc("app", routes(rt("", "/")),
					withState(wantEp("a", 80, "10.0.0.2:80"), discovery.Draining),
					withState(wantEp("b", 80, "10.0.0.3:80"), discovery.Draining),
					withState(wantEp("c", 80, "10.0.0.4:80"), discovery.Starting),
					withState(wantEp("d", 80, "10.0.0.5:80"), discovery.Unhealthy),
					wantEp("e", 80, "10.0.0.6:80"),
					withState(wantEp("f", 80, "10.0.0.7:80"), discovery.Draining),
					wantEp("g", 80, "10.0.0.8:80"),
				),
			}},
		},
		{
			name: "stopped containers keep their service's routes without endpoints; running containers win",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("old-1", "10.0.0.2", "cutover.enable=true", "cutover.host=old.example.com"), compose("shop", "old")),
				modCtr(modCtr(newCtr("old-2", "10.0.0.3", "cutover.enable=true", "cutover.host=old.example.com"), compose("shop", "old")),
					func(c *container) { c.Running = false }),
				modCtr(newCtr("gone", "10.0.0.4", "cutover.enable=true", "cutover.host=gone.example.com", "cutover.balance=leastconn"),
					func(c *container) { c.Running = false }),
				modCtr(newCtr("taken", "10.0.0.5", "cutover.enable=true", "cutover.host=web.example.com"),
					func(c *container) { c.Running = false }),
				newCtr("web", "10.0.0.6", "cutover.enable=true", "cutover.host=web.example.com"),
				modCtr(newCtr("off", "10.0.0.7", "cutover.enable=false", "cutover.host=off.example.com"),
					func(c *container) { c.Running = false }),
			},
			want: discovery.Snapshot{Services: []discovery.Service{
				{Name: "gone", Provider: "docker", Routes: routes(rt("gone.example.com", "/")),
					Options: discovery.Options{Balance: discovery.Balance{Policy: discovery.LeastConn}}},
				wantSvc("shop-old", routes(rt("old.example.com", "/")), wantEp("old-1", 80, "10.0.0.2:80")),
				wantSvc("web", routes(rt("web.example.com", "/")), wantEp("web", 80, "10.0.0.6:80")),
			}},
		},
		{
			name: "a bad label keeps the container's other routes and the other containers",
			opts: onHost,
			cs: []container{
				newCtr("app", "10.0.0.2", "cutover.enable=true",
					"cutover.routes.a.host=a.example.com", "cutover.routes.a.port=http",
					"cutover.routes.b.host=b.example.com", "cutover.routes.b.port=8080", "cutover.routes.b.weight=3"),
				newCtr("top", "10.0.0.3", "cutover.enable=true", "cutover.host=top.example.com", "cutover.balance=fastest"),
				newCtr("web", "10.0.0.4", "cutover.enable=true", "cutover.host=web.example.com"),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("app-b", routes(rt("b.example.com", "/")), discovery.Endpoint{
						ID: "id-app:8080", Name: "app:8080", Address: "10.0.0.2:8080", Weight: 3}),
					wantSvc("web", routes(rt("web.example.com", "/")), wantEp("web", 80, "10.0.0.4:80")),
				},
				Problems: []discovery.Problem{
					wantProb("app", "cutover.routes.a.port", `"http": want a whole number from 1 to 65535`),
					wantProb("top", "cutover.balance", `unknown policy "fastest": want roundrobin, leastconn, p2c, random, hash:source, hash:header:NAME or cookie:NAME`),
				},
			},
		},
		{
			name: "unknown cutover keys are reported with the full label",
			opts: onHost,
			cs: []container{
				newCtr("typo", "10.0.0.2", "cutover.enable=true", "cutover.hots=typo.example.com"),
				newCtr("named", "10.0.0.3", "cutover.enable=true", "cutover.routes.a.hots=a.example.com",
					"cutover.routes.b.host=b.example.com", "cutover.routes.Bad.host=c.example.com"),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("named-b", routes(rt("b.example.com", "/")), wantEp("named", 80, "10.0.0.3:80")),
				},
				Problems: []discovery.Problem{
					wantProb("named", "cutover.routes.Bad.host", `"c.example.com": want routes.NAME.KEY with NAME of lowercase letters, digits, '-' and '_'`),
					wantProb("named", "cutover.routes.a.hots", `"a.example.com": unknown key; known keys are `+known),
					wantProb("typo", "cutover.hots", `"typo.example.com": unknown key; known keys are `+known),
				},
			},
		},
		{
			name: "members with other options join and are reported; the route set grows from every member",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("web-2", "10.0.0.3", "cutover.enable=true", "cutover.host=shop.example.com,www.shop.example.com", "cutover.health.path=/up"),
					compose("shop", "web")),
				modCtr(newCtr("web-1", "10.0.0.2", "cutover.enable=true", "cutover.host=shop.example.com", "cutover.balance=leastconn"),
					compose("shop", "web")),
				modCtr(newCtr("web-3", "10.0.0.4", "cutover.enable=true", "cutover.host=shop.example.com", "cutover.balance=leastconn"),
					compose("shop", "web")),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{{
					Name: "shop-web", Provider: "docker", Options: leastconn,
					Routes: routes(rt("shop.example.com", "/"), rt("www.shop.example.com", "/")),
					Endpoints: []discovery.Endpoint{
						wantEp("web-1", 80, "10.0.0.2:80"), wantEp("web-2", 80, "10.0.0.3:80"), wantEp("web-3", 80, "10.0.0.4:80"),
					},
				}},
				Problems: []discovery.Problem{
					wantProb("web-2", "cutover.balance", "service shop-web: cutover.balance is roundrobin here but leastconn on container web-1; "+
						"the options of container web-1 are used: give every member of the service the same options"),
					wantProb("web-2", "cutover.health.path", "service shop-web: cutover.health.path is /up here but not set on container web-1; "+
						"the options of container web-1 are used: give every member of the service the same options"),
				},
			},
		},
		{
			name: "routes of one container that disagree on options are reported with the route's labels",
			opts: onHost,
			cs: []container{newCtr("app", "10.0.0.2", "cutover.enable=true", "cutover.service=web",
				"cutover.routes.a.host=a.example.com", "cutover.routes.a.protocol=h2c",
				"cutover.routes.a.health.interval=5s", "cutover.routes.a.health.status=200-299",
				"cutover.routes.b.host=b.example.com", "cutover.routes.b.port=8080")},
			want: discovery.Snapshot{
				Services: []discovery.Service{{
					Name: "web", Provider: "docker",
					Options: discovery.Options{Protocol: discovery.H2C, Health: discovery.Health{
						Interval: 5 * time.Second, StatusMin: 200, StatusMax: 299}},
					Routes:    routes(rt("a.example.com", "/"), rt("b.example.com", "/")),
					Endpoints: []discovery.Endpoint{wantEp("app", 80, "10.0.0.2:80"), wantEp("app", 8080, "10.0.0.2:8080")},
				}},
				Problems: []discovery.Problem{
					wantProb("app", "cutover.routes.b.health.interval", "service web: cutover.routes.b.health.interval is not set here but 5s on container app, route a; "+
						"the options of container app, route a are used: give every member of the service the same options"),
					wantProb("app", "cutover.routes.b.health.status", "service web: cutover.routes.b.health.status is not set here but 200-299 on container app, route a; "+
						"the options of container app, route a are used: give every member of the service the same options"),
					wantProb("app", "cutover.routes.b.protocol", "service web: cutover.routes.b.protocol is http here but h2c on container app, route a; "+
						"the options of container app, route a are used: give every member of the service the same options"),
				},
			},
		},
		{
			name: "two services claiming one host and path: the first by name keeps it",
			opts: onHost,
			cs: []container{
				newCtr("b", "10.0.0.3", "cutover.enable=true", "cutover.host=x.example.com,y.example.com"),
				newCtr("a", "10.0.0.2", "cutover.enable=true", "cutover.host=x.example.com"),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("a", routes(rt("x.example.com", "/")), wantEp("a", 80, "10.0.0.2:80")),
					wantSvc("b", routes(rt("y.example.com", "/")), wantEp("b", 80, "10.0.0.3:80")),
				},
				Problems: []discovery.Problem{{Provider: "docker", Source: "service b", Key: "host/path",
					Message: "route x.example.com/ is already served by service a; this route is ignored"}},
			},
		},
		{
			name: "a service name made from a long container name is reported",
			opts: onHost,
			cs:   []container{newCtr(longName, "10.0.0.2", "cutover.enable=true")},
			want: discovery.Snapshot{Problems: []discovery.Problem{wantProb(longName, "cutover.service",
				`the service name "`+longName+`" made from the container name is not valid (want a service name of 1 to 128 characters): set cutover.service`)}},
		},
		{
			name: "nginx-proxy: VIRTUAL_* variables route, labels win, enable=false wins",
			opts: options{CompatNginxProxy: true},
			cs: []container{
				modCtr(newCtr("legacy", "10.0.0.2"), func(c *container) {
					c.Env = map[string]string{"VIRTUAL_HOST": "Old.example.com, www.example.com", "VIRTUAL_PORT": "8080", "VIRTUAL_PATH": "/app/"}
				}),
				modCtr(newCtr("mixed", "10.0.0.3", "cutover.host=new.example.com"), func(c *container) {
					c.Env = map[string]string{"VIRTUAL_HOST": "ignored.example.com", "VIRTUAL_PORT": "3000"}
				}),
				modCtr(newCtr("optout", "10.0.0.4", "cutover.enable=false"), func(c *container) {
					c.Env = map[string]string{"VIRTUAL_HOST": "optout.example.com"}
				}),
				modCtr(newCtr("badport", "10.0.0.5"), func(c *container) {
					c.Env = map[string]string{"VIRTUAL_HOST": "bad.example.com", "VIRTUAL_PORT": "eighty"}
				}),
				modCtr(newCtr("portonly", "10.0.0.6"), func(c *container) {
					c.Env = map[string]string{"VIRTUAL_PORT": "8080"}
				}),
				modCtr(newCtr("noport", "10.0.0.7"), func(c *container) {
					c.Env, c.ExposedPorts = map[string]string{"VIRTUAL_HOST": "noport.example.com"}, []int{80, 81}
				}),
			},
			want: discovery.Snapshot{
				Services: []discovery.Service{
					wantSvc("legacy", routes(rt("old.example.com", "/app"), rt("www.example.com", "/app")), wantEp("legacy", 8080, "10.0.0.2:8080")),
					wantSvc("mixed", routes(rt("new.example.com", "/")), wantEp("mixed", 3000, "10.0.0.3:3000")),
				},
				Problems: []discovery.Problem{
					wantProb("badport", "VIRTUAL_PORT", `"eighty": want a whole number from 1 to 65535`),
					wantProb("noport", "cutover.port", "no cutover.port label and the container exposes 2 TCP ports (80, 81): set cutover.port (or VIRTUAL_PORT) to one of them"),
				},
			},
		},
		{
			name: "without nginx-proxy compatibility VIRTUAL_HOST means nothing",
			opts: onHost,
			cs: []container{
				modCtr(newCtr("legacy", "10.0.0.2"), func(c *container) {
					c.Env = map[string]string{"VIRTUAL_HOST": "old.example.com", "VIRTUAL_PORT": "8080"}
				}),
			},
		},
	}
}

func TestBuild(t *testing.T) {
	for _, tc := range buildCases() {
		t.Run(tc.name, func(t *testing.T) {
			names := containerNames(tc.cs)
			got := build(tc.cs, tc.opts)
			if !got.Equal(tc.want) {
				t.Errorf("build differs (- want, + got):\n%s", diffLines(renderSnap(tc.want), renderSnap(got)))
			}
			if !slices.Equal(containerNames(tc.cs), names) {
				t.Errorf("build reordered its input")
			}
		})
	}
}

// TestOptionValuesCoverOptions fails when discovery.Options gains a field
// that optionValues does not compare yet: a difference in it would then
// go unreported.
func TestOptionValuesCoverOptions(t *testing.T) {
	if n := reflect.TypeFor[discovery.Options]().NumField(); n != 5 {
		t.Errorf("discovery.Options has %d fields, optionValues knows 5", n)
	}
	if n := reflect.TypeFor[discovery.TLSOptions]().NumField(); n != 5 {
		t.Errorf("discovery.TLSOptions has %d fields, optionValues knows 5", n)
	}
	if n := reflect.TypeFor[discovery.TCPOptions]().NumField(); n != 3 {
		t.Errorf("discovery.TCPOptions has %d fields, optionValues knows 3", n)
	}
	if n := reflect.TypeFor[discovery.Health]().NumField(); n != 11 {
		t.Errorf("discovery.Health has %d fields, optionValues knows 11", n)
	}
	if n := reflect.TypeFor[discovery.Balance]().NumField(); n != 2 {
		t.Errorf("discovery.Balance has %d fields, Balance.String shows 2", n)
	}
}

// TestBuildOrderIndependent checks that the order of the containers does
// not matter: shuffled inputs give equal snapshots.
func TestBuildOrderIndependent(t *testing.T) {
	cases := buildCases()
	cases = append(cases, buildCase{name: "synthetic", opts: onHost, cs: synthetic(20, 3)})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		want := build(tc.cs, tc.opts)
		for range 20 {
			cs := slices.Clone(tc.cs)
			rng.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
			if got := build(cs, tc.opts); !got.Equal(want) {
				t.Fatalf("%s: shuffled input gives another snapshot (- first, + shuffled):\n%s",
					tc.name, diffLines(renderSnap(want), renderSnap(got)))
			}
		}
	}
}

// synthetic returns services×replicas Compose containers, each service on
// its own host, with a few variations: one in three is stopping, one in
// five has no health yet, and every seventh service has a second route.
func synthetic(services, replicas int) []container {
	cs := make([]container, 0, services*replicas)
	for s := range services {
		for r := range replicas {
			name := fmt.Sprintf("proj-svc%d-%d", s, r+1)
			ip := netip.AddrFrom4([4]byte{10, byte(s >> 8), byte(s), byte(r + 2)})
			c := newCtr(name, ip.String(), "cutover.enable=true", fmt.Sprintf("cutover.host=svc%d.example.com", s))
			compose("proj", fmt.Sprintf("svc%d", s))(&c)
			if s%7 == 0 {
				c.Labels["cutover.routes.admin.path"] = "/admin"
				c.Labels["cutover.routes.admin.port"] = "9000"
			}
			c.Stopping = (s+r)%3 == 0
			if (s+r)%5 == 0 {
				c.Health = "starting"
			}
			cs = append(cs, c)
		}
	}
	return cs
}

func BenchmarkBuild5000(b *testing.B) {
	cs := synthetic(500, 10)
	snap := build(cs, onHost)
	if len(snap.Services) != 500+500/7+1 || len(snap.Problems) != 0 {
		b.Fatalf("synthetic snapshot: %d services, problems %v", len(snap.Services), snap.Problems)
	}
	b.ReportAllocs()
	for b.Loop() {
		build(cs, onHost)
	}
}

func containerNames(cs []container) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}

// renderSnap writes a snapshot as lines to compare and show.
func renderSnap(s discovery.Snapshot) []string {
	var out []string
	for _, svc := range s.Services {
		out = append(out, fmt.Sprintf("service %s provider=%s options=%+v", svc.Name, svc.Provider, svc.Options))
		for _, r := range svc.Routes {
			out = append(out, "  route "+r.String())
		}
		for _, e := range svc.Endpoints {
			out = append(out, fmt.Sprintf("  endpoint id=%s name=%s address=%s weight=%d state=%s", e.ID, e.Name, e.Address, e.Weight, e.State))
		}
	}
	for _, p := range s.Problems {
		out = append(out, fmt.Sprintf("problem provider=%s source=%q key=%q message=%q", p.Provider, p.Source, p.Key, p.Message))
	}
	return out
}

// diffLines shows a line diff of want and got: "-" for lines only in
// want, "+" for lines only in got.
func diffLines(want, got []string) string {
	// lcs[i][j] is the length of the longest common subsequence of
	// want[i:] and got[j:].
	lcs := make([][]int, len(want)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(got)+1)
	}
	for i := len(want) - 1; i >= 0; i-- {
		for j := len(got) - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case i < len(want) && j < len(got) && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case j == len(got) || i < len(want) && lcs[i+1][j] >= lcs[i][j+1]:
			b.WriteString("- " + want[i] + "\n")
			i++
		default:
			b.WriteString("+ " + got[j] + "\n")
			j++
		}
	}
	return b.String()
}
