package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cutoverproxy/cutover/discovery"
)

// providerName names the provider in snapshots and problems.
const providerName = "file"

// Parse turns the contents of a configuration file into a snapshot of its
// services. path names the file in error messages only. Any problem rejects
// the whole file: the error joins every problem found, sorted by line, each
// a discovery.Problem whose Source is "path:line" and whose Key is the dotted
// key at fault (services.web.balance). Parse is a pure function.
func Parse(path string, data []byte) (discovery.Snapshot, error) {
	p := &parser{path: path}
	var services []entry
	switch root := p.document(data); {
	case root == nil && len(p.problems) == 0, root != nil && isNull(root):
		// A file being written in place is empty for a moment; applying
		// it would drop every service.
		p.fail(0, "", "the file is empty: write services: {} for a configuration without services")
	case root != nil:
		services = p.services(root)
	}
	return p.snapshot(services)
}

// snapshot checks the services of a file against each other and returns
// them as a snapshot, or the error that joins every problem found. It
// sorts the routes and endpoints of services in place.
func (p *parser) snapshot(services []entry) (discovery.Snapshot, error) {
	p.conflicts(services)
	if len(p.problems) > 0 {
		return discovery.Snapshot{}, p.err()
	}
	var snap discovery.Snapshot
	if len(services) > 0 {
		snap.Services = make([]discovery.Service, 0, len(services))
	}
	for _, e := range services {
		snap.Services = append(snap.Services, e.svc)
	}
	snap.Sort()
	return snap, nil
}

// parser collects the problems of one file.
type parser struct {
	path     string
	problems []problem
}

type problem struct {
	line int
	discovery.Problem
}

// entry is a service that parsed without problems, and the line of its name.
type entry struct {
	svc  discovery.Service
	line int
}

// fail records a problem at line (0 when unknown) with the dotted key.
func (p *parser) fail(line int, key, format string, args ...any) {
	src := p.path
	if line > 0 {
		src += ":" + strconv.Itoa(line)
	}
	p.problems = append(p.problems, problem{line, discovery.Problem{
		Provider: providerName, Source: src, Key: key, Message: fmt.Sprintf(format, args...),
	}})
}

func (p *parser) err() error {
	slices.SortStableFunc(p.problems, func(a, b problem) int { return a.line - b.line })
	errs := make([]error, len(p.problems))
	for i, pr := range p.problems {
		errs[i] = pr.Problem
	}
	return errors.Join(errs...)
}

// document returns the root node of the file's one YAML document, or nil
// when the file is empty or the YAML is invalid.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err != io.EOF {
			p.syntax(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		p.syntax(err)
		return nil
	case !isNull(next.Content[0]):
		p.fail(next.Content[0].Line, "", "a second YAML document: put every service under the one services key")
		return nil
	}
	return deref(doc.Content[0])
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax records a YAML syntax error, at its line when the error names one.
func (p *parser) syntax(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.fail(line, "", "invalid YAML: %s", m[2])
		return
	}
	p.fail(0, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// services parses the root mapping: its only key is services.
func (p *parser) services(root *yaml.Node) []entry {
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.fail(root.Line, "", "want a mapping with the key services, e.g. services: {web: {host: example.com}}")
		return nil
	}
	var out []entry
	found := false
	p.pairs(root, "", func(k, v *yaml.Node, key string) {
		found = found || key == "services"
		if key != "services" {
			p.fail(k.Line, key, "unknown top-level key: the only one is services")
			return
		}
		if isNull(v) {
			return
		}
		if v.Kind != yaml.MappingNode {
			p.fail(k.Line, key, "want a mapping from service names to services")
			return
		}
		p.pairs(v, "services.", func(k, v *yaml.Node, _ string) {
			if e, ok := p.service(k, v); ok {
				out = append(out, e)
			}
		})
	})
	if !found && len(p.problems) == 0 {
		p.fail(root.Line, "", "no services key: write services: {} for a configuration without services")
	}
	return out
}

// pairs calls fn with every key and value of mapping m and the key's
// dotted name, prefix+key. Values are dereferenced aliases. It reports keys
// that are not plain strings, YAML merge keys and keys given twice, and
// does not call fn for them.
func (p *parser) pairs(m *yaml.Node, prefix string, fn func(k, v *yaml.Node, key string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			p.fail(k.Line, prefix, "want a plain string as key")
		case k.ShortTag() == "!!merge":
			p.fail(k.Line, prefix+k.Value, "YAML merge keys are not supported: write the keys out")
		case seen[k.Value] != 0:
			p.fail(k.Line, prefix+k.Value, "given twice (first at line %d)", seen[k.Value])
		default:
			seen[k.Value] = k.Line
			fn(k, v, prefix+k.Value)
		}
	}
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// conflicts reports every route that two services claim: in a file, that is
// a mistake to fix, not something to resolve by precedence.
func (p *parser) conflicts(entries []entry) {
	services := make([]discovery.Service, len(entries))
	lines := make(map[string]int, len(entries))
	for i, e := range entries {
		services[i] = e.svc
		lines[e.svc.Name] = e.line
	}
	_, problems := discovery.DropRouteConflicts(services, nil)
	for _, pr := range problems {
		name := strings.TrimPrefix(pr.Source, "service ")
		switch pr.Key {
		case "tcp.listen":
			msg, _, _ := strings.Cut(pr.Message, "; this service gets none")
			p.fail(lines[name], "services."+name+".tcp.listen", "%s: give each service its own port", msg)
		default:
			msg := strings.TrimSuffix(pr.Message, "; this route is ignored")
			p.fail(lines[name], "services."+name, "%s: give each service its own host or path", msg)
		}
	}
}
