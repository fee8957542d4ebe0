package file

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/cutoverproxy/cutover/discovery"
)

// flat is a service's mapping flattened to the keys of discovery.ParseKeys
// (health: {path: /x} becomes health.path), with the line of each key.
type flat struct {
	keys         map[string]string
	lines        map[string]int
	backends     *yaml.Node // the value of backends; nil when not given
	backendsLine int
}

// maxSegments bounds the flattening: no key is deeper than
// routes.NAME.health.path, and the bound stops alias cycles.
const maxSegments = 4

// notForFiles explains the keys that mean something on a container but not
// on a service of the file.
var notForFiles = map[string]string{
	"enable":  "every service in the file is served; to disable one, remove it or comment it out",
	"port":    "a file service has no container port: list host:port addresses under backends",
	"service": "a file service is named by its key under services",
	"network": "backends are dialled at their address, not on a Docker network: list them under backends",
	"weight":  "give each backend its own weight: backends: [{address: 10.0.0.1:8080, weight: 2}]",

	"autoredeploy":       "deploys replace containers; the backends of a file are not containers",
	"deploy.strategy":    "deploys replace containers; the backends of a file are not containers",
	"deploy.id":          "deploys write it on the containers they create",
	"deploy.time":        "deploys write it on the containers they create",
	"deploy.image":       "deploys write it on the containers they create",
	"deploy.previous":    "deploys write it on the containers they create",
	"deploy.previous-id": "deploys write it on the containers they create",
}

// service parses one service of the file. It reports false when the
// service had a problem.
func (p *parser) service(k, v *yaml.Node) (entry, bool) {
	name, prefix := k.Value, "services."+k.Value
	if _, err := discovery.ParseServiceName(name); err != nil {
		p.fail(k.Line, prefix, "%v", err)
		return entry{}, false
	}
	before := len(p.problems)
	f := &flat{keys: map[string]string{}, lines: map[string]int{}}
	switch {
	case isNull(v):
	case v.Kind == yaml.MappingNode:
		p.flatten(f, prefix+".", "", v)
	default:
		p.fail(k.Line, prefix, "want a mapping of keys such as host, path and backends")
		return entry{}, false
	}
	p.fileKeys(f, prefix)
	spec, errs := discovery.ParseKeys(f.keys)
	for _, e := range errs {
		p.fail(f.lines[e.Key], prefix+"."+e.Key, "%s", e.Message)
	}
	svc := discovery.Service{Name: name, Provider: providerName}
	if len(errs) == 0 {
		svc.Options = p.options(prefix, f, spec.Routes)
		for _, r := range spec.Routes {
			svc.Routes = append(svc.Routes, r.Routes()...)
		}
	}
	svc.Endpoints = p.backends(prefix+".backends", name, f.backends, f.backendsLine)
	if len(p.problems) > before {
		return entry{}, false
	}
	return entry{svc, k.Line}, true // Snapshot.Sort drops routes listed twice
}

// flatten adds the keys of mapping m to f, each led by prefix (a dotted
// key ending in "." or ""). svc leads the keys in error messages.
func (p *parser) flatten(f *flat, svc, prefix string, m *yaml.Node) {
	p.pairs(m, svc+prefix, func(k, v *yaml.Node, _ string) {
		key := prefix + k.Value
		switch {
		case key == "backends":
			f.backends, f.backendsLine = v, k.Line
		case v.Kind == yaml.MappingNode && len(v.Content) == 0 && !isGroup(key):
			// foo: {} sets nothing, but foo is no group either: checked
			// as foo: would be, so that it is reported.
			p.set(f, svc, key, "", k.Line)
		case v.Kind == yaml.MappingNode && strings.Count(key, ".")+1 < maxSegments:
			p.flatten(f, svc, key+".", v)
		case v.Kind == yaml.MappingNode:
			p.fail(k.Line, svc+key, "unknown key; %s", knownKeysHelp())
		case v.Kind == yaml.SequenceNode && isHostKey(key):
			if hosts, ok := p.hostList(svc+key, v); ok {
				p.set(f, svc, key, hosts, k.Line)
			}
		case v.Kind == yaml.SequenceNode:
			p.fail(k.Line, svc+key, "want one value, not a list (only host and backends take lists)")
		case isNull(v):
			p.set(f, svc, key, "", k.Line)
		default:
			p.set(f, svc, key, v.Value, k.Line)
		}
	})
}

// set records one flattened key, reporting one that was already given in
// another form (health.path and health: {path}).
func (p *parser) set(f *flat, svc, key, value string, line int) {
	if first, ok := f.lines[key]; ok {
		p.fail(line, svc+key, "given twice (first at line %d)", first)
		return
	}
	f.keys[key], f.lines[key] = value, line
}

// isHostKey reports whether key is host or routes.NAME.host: the keys whose
// value may be a YAML list of names.
func isHostKey(key string) bool {
	if key == "host" {
		return true
	}
	rest, ok := strings.CutPrefix(key, "routes.")
	name, k, _ := strings.Cut(rest, ".")
	return ok && name != "" && k == "host"
}

// hostList joins a YAML list of host names with commas, as ParseHosts
// expects them.
func (p *parser) hostList(key string, seq *yaml.Node) (string, bool) {
	hosts := make([]string, 0, len(seq.Content))
	for i, item := range seq.Content {
		n := deref(item)
		if n.Kind != yaml.ScalarNode || isNull(n) {
			p.fail(item.Line, fmt.Sprintf("%s[%d]", key, i), "want a host name")
			return "", false
		}
		hosts = append(hosts, n.Value)
	}
	return strings.Join(hosts, ","), true
}

// fileKeys reports and removes the keys that a file service cannot use:
// the container-only ones and unknown ones. Malformed routes.* keys are
// left to ParseKeys, which explains the routes.NAME.KEY form.
func (p *parser) fileKeys(f *flat, svc string) {
	known := knownKeys()
	for _, key := range slices.Sorted(maps.Keys(f.keys)) {
		k := routeKey(key)
		msg, bad := notForFiles[k]
		switch {
		case bad:
			msg = "not used in a file: " + msg
		case known[k] || k == key && strings.HasPrefix(key, "routes."):
			continue
		case key == "routes":
			msg = "want a mapping of route names, e.g. routes: {api: {host: api.example.com}}"
		case key == "health":
			msg = "want a mapping of health keys, e.g. health: {path: /healthz}"
		default:
			msg = "unknown key; " + knownKeysHelp()
		}
		p.fail(f.lines[key], svc+"."+key, "%s", msg)
		delete(f.keys, key)
	}
}

// knownKeys is the set of discovery.KnownKeys, made once.
var knownKeys = sync.OnceValue(func() map[string]bool {
	known := map[string]bool{}
	for _, k := range discovery.KnownKeys() {
		known[k] = true
	}
	return known
})

// isGroup reports whether key is the first part of keys a file may use
// (health, tls, routes, routes.NAME.health, …; not deploy): an empty
// mapping under it sets nothing and is no error.
func isGroup(key string) bool {
	if key == "routes" {
		return true
	}
	if rest, ok := strings.CutPrefix(key, "routes."); ok {
		_, k, found := strings.Cut(rest, ".")
		if !found {
			return false // routes.NAME: a route of no keys
		}
		key = k
	}
	for known := range knownKeys() {
		if _, bad := notForFiles[known]; !bad && strings.HasPrefix(known, key+".") {
			return true
		}
	}
	return false
}

// routeKey returns the key of a route: KEY for routes.NAME.KEY, else key.
func routeKey(key string) string {
	if rest, ok := strings.CutPrefix(key, "routes."); ok {
		if _, k, found := strings.Cut(rest, "."); found {
			return k
		}
	}
	return key
}

func knownKeysHelp() string {
	var keys []string
	for _, k := range discovery.KnownKeys() {
		if _, bad := notForFiles[k]; !bad {
			keys = append(keys, k)
		}
	}
	return "known keys are " + strings.Join(keys, ", ") + ", backends, and routes.NAME.KEY with any of them but backends"
}

// options returns the options of a service's routes, reporting routes
// that disagree: balance, protocol and health belong to the service.
func (p *parser) options(svc string, f *flat, routes []discovery.RouteSpec) discovery.Options {
	if len(routes) == 0 {
		return discovery.Options{}
	}
	ref := routes[0]
	other := "the service's top-level keys"
	if ref.Name != "" {
		other = "route " + ref.Name
	}
	for _, r := range routes[1:] {
		if diff := optionDiff(ref.Options, r.Options); diff != "" {
			p.fail(f.routeLine(r.Name), svc+".routes."+r.Name,
				"options differ from those of %s (%s): balance, protocol and health apply to the whole service; set them once, beside host and path",
				other, diff)
		}
	}
	return ref.Options
}

// optionDiff names the options that differ, or returns "".
func optionDiff(a, b discovery.Options) string {
	var d []string
	if a.Balance != b.Balance {
		d = append(d, "balance")
	}
	if a.Protocol != b.Protocol {
		d = append(d, "protocol")
	}
	if a.Health != b.Health {
		d = append(d, "health")
	}
	return strings.Join(d, ", ")
}

// routeLine is the line of the first option key of route name, else of
// its first key.
func (f *flat) routeLine(name string) int {
	first, firstOption := 0, 0
	for key, line := range f.lines {
		rest, ok := strings.CutPrefix(key, "routes."+name+".")
		if !ok {
			continue
		}
		if first == 0 || line < first {
			first = line
		}
		isOption := rest == "balance" || rest == "protocol" || strings.HasPrefix(rest, "health.")
		if isOption && (firstOption == 0 || line < firstOption) {
			firstOption = line
		}
	}
	if firstOption != 0 {
		return firstOption
	}
	return first
}
