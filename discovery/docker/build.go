package docker

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// providerName names the provider in snapshots and problems.
const providerName = "docker"

// The labels that Docker Compose puts on the containers it creates.
const (
	labelComposeProject = "com.docker.compose.project"
	labelComposeService = "com.docker.compose.service"
)

// hostNetwork is the network mode, and the network name, of a container
// that uses the host's network stack.
const hostNetwork = "host"

// build turns the known containers into the provider's full snapshot. It
// is a pure function: the same containers in any order give an equal
// snapshot, and cs is not changed.
//
// Which containers: running ones that are enabled, by cutover.enable=true,
// by opts.ExposeByDefault, or (with opts.CompatNginxProxy) by a VIRTUAL_HOST
// variable; cutover.enable=false always wins. cutover's own container is
// never routed. A container with cutover labels that is not enabled is
// reported, so that a forgotten cutover.enable does not go unnoticed.
//
// Each route of a container is one endpoint (container ID and port) of a
// service named by the route's service key, else "<project>-<service>" of
// Docker Compose, else the container name; a named route without a service
// key adds "-<route name>" to that default. The first container by name
// (then route) sets a service's balance, protocol and health; members that
// differ are reported and join anyway.
//
// Every problem is reported with the container's name and the full label,
// and skips only the routes it concerns.
func build(cs []container, opts options) discovery.Snapshot {
	b := &builder{
		opts:     opts,
		selfNets: slices.Sorted(slices.Values(opts.Self.Networks)),
		services: map[string]*group{},
		stopped:  map[string]*discovery.Service{},
	}
	sorted := byName(cs)
	for _, c := range sorted {
		b.container(c)
	}
	for _, c := range sorted {
		b.stoppedContainer(c)
	}
	return b.snapshot()
}

// builder collects the services and problems of one build.
type builder struct {
	opts     options
	selfNets []string // opts.Self.Networks, sorted
	services map[string]*group
	problems []discovery.Problem
	// stopped are the services that only stopped containers define: their
	// routes answer 503 until a container runs again, instead of 404.
	stopped map[string]*discovery.Service
}

// group is a service being built.
type group struct {
	svc       discovery.Service
	owner     string         // the member that set the options: "container web-1, route api"
	endpoints map[string]int // ID → index in svc.Endpoints
}

// unit is one container being built: its keys for ParseKeys and where
// they came from.
type unit struct {
	c           *container
	keys        map[string]string // cutover labels without the prefix, and nginx-proxy variables
	env         map[string]string // key → the variable it was read from
	labels      int               // how many cutover labels
	virtualHost bool              // nginx-proxy compatibility is on and VIRTUAL_HOST is set
	networks    []string          // the container's network names, sorted; see sortedNetworks
}

// byName returns pointers to the containers, sorted by name (then ID).
func byName(cs []container) []*container {
	out := make([]*container, len(cs))
	for i := range cs {
		out[i] = &cs[i]
	}
	slices.SortFunc(out, func(a, b *container) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return out
}

// container adds the routes of one container.
func (b *builder) container(c *container) {
	if !c.Running || b.isSelf(c) {
		return
	}
	u := b.unit(c)
	spec, errs := discovery.ParseKeys(u.keys)
	if !b.enabled(u, spec) {
		return
	}
	for _, e := range errs {
		b.problem(u, u.label(e.Key), "%s", keyMessage(e))
	}
	if _, bad := u.keys["enable"]; bad && !spec.EnableSet {
		return // a mistyped cutover.enable=false must not expose the container
	}
	for _, r := range spec.Routes {
		b.route(u, r)
	}
}

// stoppedContainer keeps the routes of an enabled container that is not
// running (stopped, restarting, or just removed) for the services that no
// running container serves, so that their clients get 503, not 404, while
// the service is being restarted or recreated. Its problems were or will
// be reported while it runs; here they only skip routes, silently.
func (b *builder) stoppedContainer(c *container) {
	if c.Running || b.isSelf(c) {
		return
	}
	u := b.unit(c)
	spec, _ := discovery.ParseKeys(u.keys)
	if !b.enabledQuietly(u, spec) {
		return
	}
	for _, r := range spec.Routes {
		name, ok := b.quietServiceName(u, r)
		if !ok || b.services[name] != nil {
			continue
		}
		svc := b.stopped[name]
		if svc == nil {
			svc = &discovery.Service{Name: name, Provider: providerName, Options: r.Options}
			b.stopped[name] = svc
		}
		svc.Routes = append(svc.Routes, r.Routes()...)
	}
}

// enabledQuietly is enabled without reporting anything.
func (b *builder) enabledQuietly(u *unit, spec discovery.Spec) bool {
	if _, given := u.keys["enable"]; given {
		return spec.EnableSet && spec.Enable
	}
	return b.opts.ExposeByDefault || u.virtualHost
}

// quietServiceName is serviceName without reporting a bad name.
func (b *builder) quietServiceName(u *unit, r discovery.RouteSpec) (string, bool) {
	saved := len(b.problems)
	name, ok := b.serviceName(u, r)
	b.problems = b.problems[:saved]
	return name, ok
}

// isSelf reports whether c is cutover's own container. Self.ID may be
// the short ID (a container's host name) or the full one.
func (b *builder) isSelf(c *container) bool {
	id := b.opts.Self.ID
	return id != "" && (c.ID == id || len(id) >= 12 && strings.HasPrefix(c.ID, id))
}

// nginxProxyEnv maps the variables that nginx-proxy reads to the keys they
// stand for.
var nginxProxyEnv = [...]struct{ env, key string }{
	{"VIRTUAL_HOST", "host"}, {"VIRTUAL_PORT", "port"}, {"VIRTUAL_PATH", "path"},
}

// unit collects the keys of c: its cutover labels, and with nginx-proxy
// compatibility the variables for which no label is given (labels win).
func (b *builder) unit(c *container) *unit {
	u := &unit{c: c, keys: map[string]string{}}
	for k, v := range c.Labels {
		if key, ok := strings.CutPrefix(k, labelPrefix); ok {
			u.keys[key] = v
			u.labels++
		}
	}
	if !b.opts.CompatNginxProxy {
		return u
	}
	for _, e := range nginxProxyEnv {
		v := strings.TrimSpace(c.Env[e.env])
		if v == "" {
			continue
		}
		u.virtualHost = u.virtualHost || e.key == "host"
		if _, labelled := u.keys[e.key]; labelled {
			continue
		}
		if u.env == nil {
			u.env = map[string]string{}
		}
		u.keys[e.key], u.env[e.key] = v, e.env
	}
	return u
}

// enabled reports whether the container is to be routed (or its bad
// cutover.enable reported), and reports an enabled-looking container that
// is not.
func (b *builder) enabled(u *unit, spec discovery.Spec) bool {
	if _, given := u.keys["enable"]; given {
		return !spec.EnableSet || spec.Enable
	}
	if b.opts.ExposeByDefault || u.virtualHost {
		return true
	}
	if u.labels > 0 {
		b.problem(u, labelPrefix+"enable",
			"the container has cutover labels but is not enabled: set cutover.enable=true to route it (or cutover.enable=false to silence this)")
	}
	return false
}

// keyMessage is the message of a bad key, with the value unless the
// message already quotes it.
func keyMessage(e discovery.KeyError) string {
	q := strconv.Quote(e.Value)
	if strings.Contains(e.Message, q) {
		return e.Message
	}
	return q + ": " + e.Message
}

// label returns the name the user wrote for key: the label, or the
// variable it was read from.
func (u *unit) label(key string) string {
	if v, ok := u.env[key]; ok {
		return v
	}
	return labelPrefix + key
}

// routeLabel returns the label that sets key for route r: the route's own
// routes.NAME.key when given, else the top-level key when given, else the
// one to set (routes.NAME.key for a named route).
func (u *unit) routeLabel(r discovery.RouteSpec, key string) string {
	if r.Name != "" {
		own := "routes." + r.Name + "." + key
		_, hasOwn := u.keys[own]
		_, hasBase := u.keys[key]
		if hasOwn || !hasBase {
			return u.label(own)
		}
	}
	return u.label(key)
}

// problem records a problem of the container of u.
func (b *builder) problem(u *unit, key, format string, args ...any) {
	b.problems = append(b.problems, discovery.Problem{
		Provider: providerName, Source: "container " + u.c.Name, Key: key,
		Message: fmt.Sprintf(format, args...),
	})
}

// route adds route r of a container as an endpoint of its service. Every
// problem of the route is reported before it is skipped.
func (b *builder) route(u *unit, r discovery.RouteSpec) {
	name, nameOK := b.serviceName(u, r)
	port, portOK := b.port(u, r)
	addr, addrOK := b.address(u, r)
	if !nameOK || !portOK || !addrOK {
		return
	}
	p := strconv.Itoa(port)
	b.join(u, r, name, discovery.Endpoint{
		ID:      u.c.ID + ":" + p,
		Name:    u.c.Name + ":" + p,
		Address: netip.AddrPortFrom(addr, uint16(port)).String(),
		Weight:  r.Weight,
		State:   state(u.c),
	})
}

// serviceName returns the service of route r: its service key, else
// "<project>-<service>" from the Compose labels, else the container name;
// a named route without a service key adds "-<route name>".
func (b *builder) serviceName(u *unit, r discovery.RouteSpec) (string, bool) {
	if r.Service != "" {
		return r.Service, true // checked by ParseKeys
	}
	name, from := u.c.Name, "the container name"
	project, service := u.c.Labels[labelComposeProject], u.c.Labels[labelComposeService]
	if project != "" && service != "" {
		name, from = project+"-"+service, "the Compose project and service"
	}
	if r.Name != "" {
		name, from = name+"-"+r.Name, from+" and the route name"
	}
	if _, err := discovery.ParseServiceName(name); err != nil {
		key := u.routeLabel(r, "service")
		b.problem(u, key, "the service name %q made from %s is not valid (%v): set %s", name, from, err, key)
		return "", false
	}
	return name, true
}

// port returns the container port of route r: its port key, else the
// container's only exposed TCP port.
func (b *builder) port(u *unit, r discovery.RouteSpec) (int, bool) {
	if r.Port != 0 {
		return r.Port, true
	}
	ports := u.c.ExposedPorts
	if len(ports) == 1 {
		return ports[0], true
	}
	key := u.routeLabel(r, "port")
	fix := key
	if b.opts.CompatNginxProxy && r.Name == "" {
		fix += " (or VIRTUAL_PORT)"
	}
	if len(ports) == 0 {
		b.problem(u, key, "no %s label and the container exposes no TCP port: set %s", key, fix)
	} else {
		b.problem(u, key, "no %s label and the container exposes %d TCP ports (%s): set %s to one of them",
			key, len(ports), joinInts(ports), fix)
	}
	return 0, false
}

// address returns the IP address to reach the container on for route r.
func (b *builder) address(u *unit, r discovery.RouteSpec) (netip.Addr, bool) {
	mode := u.c.NetworkMode
	switch {
	case strings.HasPrefix(mode, "container:"):
		b.problem(u, "", "the container uses the network stack of another container (network mode %s): route that container instead", mode)
		return netip.Addr{}, false
	case mode == hostNetwork:
		return b.hostMode(u, r)
	case r.Network != "":
		return b.named(u, r)
	case b.onHost():
		return b.anyNetwork(u)
	}
	return b.shared(u)
}

// onHost reports whether cutover reaches containers from the host's
// network: it runs on the host, or in a container on the host network.
func (b *builder) onHost() bool {
	return !b.opts.Self.InContainer || slices.Contains(b.selfNets, hostNetwork)
}

// hostMode returns the address of a container on the host's network:
// 127.0.0.1, when cutover is on the host's network too.
func (b *builder) hostMode(u *unit, r discovery.RouteSpec) (netip.Addr, bool) {
	if !b.onHost() {
		b.problem(u, "", "the container uses the host's network (network mode host), which cutover cannot reach from its own container: "+
			"attach the container to a network cutover is on (%s), or run cutover with network mode host", list(b.selfNets))
		return netip.Addr{}, false
	}
	if r.Network != "" && r.Network != hostNetwork {
		key := u.routeLabel(r, "network")
		b.problem(u, key, "the container uses the host's network (network mode host) and is on no network %q: remove %s", r.Network, key)
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
}

// named returns the container's address on the network that route r
// names.
func (b *builder) named(u *unit, r discovery.RouteSpec) (netip.Addr, bool) {
	key := u.routeLabel(r, "network")
	addr, on := u.c.Networks[r.Network]
	switch {
	case !on:
		b.problem(u, key, "the container is not on network %q (it is on: %s): connect it or change %s", r.Network, list(u.sortedNetworks()), key)
	case !usable(addr):
		b.problem(u, key, "the container has no IP address on network %q: attach it with an address or change %s", r.Network, key)
	case !b.onHost() && !slices.Contains(b.selfNets, r.Network):
		b.problem(u, key, "cutover is not on network %q (cutover is on: %s): connect cutover to it or change %s", r.Network, list(b.selfNets), key)
	default:
		return addr.Unmap(), true
	}
	return netip.Addr{}, false
}

// shared returns the container's address on the first network by name
// that it shares with cutover.
func (b *builder) shared(u *unit) (netip.Addr, bool) {
	var common []string
	for _, n := range u.sortedNetworks() {
		if !slices.Contains(b.selfNets, n) {
			continue
		}
		if addr := u.c.Networks[n]; usable(addr) {
			return addr.Unmap(), true
		}
		common = append(common, n)
	}
	if len(common) > 0 {
		b.problem(u, "", "the container has no IP address on the networks it shares with cutover (%s): attach it with an address or set cutover.network", list(common))
	} else {
		b.problem(u, "", "the container shares no network with cutover (cutover is on: %s; the container on: %s): connect them or set cutover.network",
			list(b.selfNets), list(u.sortedNetworks()))
	}
	return netip.Addr{}, false
}

// anyNetwork returns the container's address on its first network by
// name that gave it one.
func (b *builder) anyNetwork(u *unit) (netip.Addr, bool) {
	for _, n := range u.sortedNetworks() {
		if addr := u.c.Networks[n]; usable(addr) {
			return addr.Unmap(), true
		}
	}
	b.problem(u, "", "the container has no IP address on any network (it is on: %s): attach it to a network", list(u.sortedNetworks()))
	return netip.Addr{}, false
}

// sortedNetworks returns the names of the container's networks, sorted.
func (u *unit) sortedNetworks() []string {
	if u.networks == nil {
		u.networks = slices.Sorted(maps.Keys(u.c.Networks))
	}
	return u.networks
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func usable(a netip.Addr) bool { return a.IsValid() && !a.IsUnspecified() }

// list joins names for a message; "none" when there are none.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// state maps the container's Docker state to the endpoint's.
func state(c *container) discovery.EndpointState {
	switch {
	case c.Stopping || c.Paused:
		return discovery.Draining
	case c.Health == "starting":
		return discovery.Starting
	case c.Health == "unhealthy":
		return discovery.Unhealthy
	}
	return discovery.Ready
}

// join adds the endpoint of route r to the named service. The first
// member sets the service's options; a member whose options differ is
// reported and joins anyway.
func (b *builder) join(u *unit, r discovery.RouteSpec, name string, ep discovery.Endpoint) {
	here := "container " + u.c.Name
	if r.Name != "" {
		here += ", route " + r.Name
	}
	g := b.services[name]
	if g == nil {
		g = &group{
			svc:       discovery.Service{Name: name, Provider: providerName, Options: r.Options},
			owner:     here,
			endpoints: map[string]int{},
		}
		b.services[name] = g
	} else if g.svc.Options != r.Options {
		b.optionProblems(u, r, g)
	}
	g.svc.Routes = append(g.svc.Routes, r.Routes()...)
	if i, dup := g.endpoints[ep.ID]; dup {
		// Two routes of one container lead to the same port of one service.
		if w := g.svc.Endpoints[i].Weight; w != ep.Weight {
			key := u.routeLabel(r, "weight")
			b.problem(u, key, "service %s: backend %s has weight %d on another route; %d is used: give it one weight", name, ep.Name, w, w)
		}
		return
	}
	g.endpoints[ep.ID] = len(g.svc.Endpoints)
	g.svc.Endpoints = append(g.svc.Endpoints, ep)
}

// optionKeys name the options of a service, in the order of optionValues.
var optionKeys = [...]string{
	"balance", "protocol", "health.path", "health.port", "health.host", "health.mode",
	"health.interval", "health.timeout", "health.rise", "health.fall", "health.status", "health.slowstart",
	"tls", "redirect-https", "hsts", "tls.acme", "tls.passthrough", "tcp.listen", "proxy-protocol",
	"tcp.idle-timeout",
}

// optionValues returns the options as they are written in labels; "" for
// those not set.
func optionValues(o discovery.Options) [len(optionKeys)]string {
	h := o.Health
	status := ""
	if h.StatusMin != 0 {
		status = fmt.Sprintf("%d-%d", h.StatusMin, h.StatusMax)
	}
	t := o.TLS
	return [...]string{
		o.Balance.String(), o.Protocol.String(), h.Path, nonZero(h.Port), h.Host, h.Mode,
		nonZero(h.Interval), nonZero(h.Timeout), nonZero(h.Rise), nonZero(h.Fall), status, nonZero(h.SlowStart),
		yes(t.Only), yes(t.Redirect), t.HSTS, yes(t.ACME), yes(t.Passthrough), nonZero(o.TCP.Listen), o.TCP.ProxyProtocol,
		nonZero(o.TCP.IdleTimeout),
	}
}

// yes formats a boolean option: "true", or "" for false (not set).
func yes(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// nonZero formats v, or returns "" for zero (not set).
func nonZero[T int | time.Duration](v T) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

// optionProblems reports each option of route r that differs from those
// of service g.
func (b *builder) optionProblems(u *unit, r discovery.RouteSpec, g *group) {
	here, there := optionValues(r.Options), optionValues(g.svc.Options)
	for i, key := range optionKeys {
		if here[i] == there[i] {
			continue
		}
		label := u.routeLabel(r, key)
		b.problem(u, label,
			"service %s: %s is %s here but %s on %s; the options of %s are used: give every member of the service the same options",
			g.svc.Name, label, shown(here[i]), shown(there[i]), g.owner, g.owner)
	}
}

func shown(v string) string {
	if v == "" {
		return "not set"
	}
	return v
}

// snapshot returns the services, without the routes that an earlier
// service by name claims, and the problems, sorted.
func (b *builder) snapshot() discovery.Snapshot {
	var snap discovery.Snapshot
	for _, name := range slices.Sorted(maps.Keys(b.services)) {
		snap.Services = append(snap.Services, b.services[name].svc)
	}
	snap.Services, snap.Problems = discovery.DropRouteConflicts(snap.Services, b.problems)
	snap.Services = append(snap.Services, b.stoppedServices(snap.Services)...)
	slices.SortFunc(snap.Problems, func(a, b discovery.Problem) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Key, b.Key), strings.Compare(a.Message, b.Message))
	})
	// Several routes of one container report the same network problem once.
	snap.Problems = slices.Compact(snap.Problems)
	snap.Sort()
	return snap
}

// stoppedServices returns the services of stopped containers without the
// routes that a running service or an earlier stopped one claims: running
// containers always win, silently.
func (b *builder) stoppedServices(running []discovery.Service) []discovery.Service {
	claimed := map[discovery.Route]bool{}
	for _, svc := range running {
		for _, r := range svc.Routes {
			claimed[r] = true
		}
	}
	var out []discovery.Service
	for _, name := range slices.Sorted(maps.Keys(b.stopped)) {
		svc := *b.stopped[name]
		var routes []discovery.Route
		for _, r := range svc.Routes {
			if !claimed[r] {
				claimed[r] = true
				routes = append(routes, r)
			}
		}
		if len(routes) > 0 {
			svc.Routes = routes
			out = append(out, svc)
		}
	}
	return out
}
