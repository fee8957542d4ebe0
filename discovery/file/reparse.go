package file

import (
	"go.yaml.in/yaml/v3"

	"github.com/cutoverproxy/cutover/discovery"
)

// reparser parses successive versions of one file with the result of
// Parse, but parses again only the services whose text changed: in a file
// of a thousand services, an edit to one costs the parse of one. The cache
// holds the services of the last version that splitServices could cut,
// keyed by their text, which names no line: a service moved by an edit
// above it is still found. Services with problems are not kept; they are
// parsed again each time, so that their problems name the lines of the
// version at hand. Whatever depends on several services (a name given
// twice, routes that two services claim) is checked on the whole file
// every time, by the code that Parse runs. A file that splitServices
// cannot cut, or with a service that does not parse alone as it does in
// the file, is parsed whole by Parse. See the package documentation.
//
// The zero value is ready to use. A reparser is not safe for concurrent
// use: the watch that owns it calls it from Run's goroutine only.
type reparser struct {
	services map[string]*cached // by the text of the service's chunk

	// What the last call did, for tests and benchmarks: whether it fell
	// back to Parse, and how many services it parsed otherwise.
	full   bool
	parsed int
}

// cached is a service that parsed without problems, and the text of its
// chunk.
type cached struct {
	text string
	svc  discovery.Service
}

// parse returns what Parse(path, data) returns.
func (r *reparser) parse(path string, data []byte) (discovery.Snapshot, error) {
	r.full, r.parsed = false, 0
	p := &parser{path: path}
	if chunks, ok := splitServices(data); ok {
		if entries, ok := r.entries(p, chunks); ok {
			return p.snapshot(entries)
		}
	}
	r.full = true
	return Parse(path, data)
}

// entries returns the services of a file that splitServices cut, taken
// from the cache or parsed, and records their problems, and the names
// given twice, in p as Parse would. It reports false, and keeps the cache
// as it was, when one of the chunks is not YAML that parses alone as it
// does in the file.
func (r *reparser) entries(p *parser, chunks []chunk) ([]entry, bool) {
	next := make(map[string]*cached, len(chunks))
	entries := make([]entry, 0, len(chunks))
	first := make(map[string]int, len(chunks)) // service name → line
	for _, c := range chunks {
		hit, ok := r.services[string(c.text)]
		if !ok {
			if hit, ok = r.service(p, c, first[c.name] == 0); !ok {
				return nil, false
			}
		}
		if line := first[c.name]; line != 0 {
			p.fail(c.line, "services."+c.name, "given twice (first at line %d)", line)
			continue
		}
		first[c.name] = c.line
		if hit != nil {
			next[hit.text] = hit
			// Shared with the cache: a snapshot's routes and endpoints
			// are read-only (see discovery.Snapshot).
			entries = append(entries, entry{hit.svc, c.line})
		}
	}
	r.services = next
	return entries, true
}

// service parses the text of one chunk and, unless parse is false (for a
// name given twice), the service in it. Problems go to p with the lines of
// the file. It returns the service with its text when it has no problems,
// nil when it has, and false when the chunk's text is not one entry of
// plain YAML.
func (r *reparser) service(p *parser, c chunk, parse bool) (*cached, bool) {
	k, v, ok := parseChunk(c)
	if !ok || !parse {
		return nil, ok
	}
	r.parsed++
	e, ok := p.service(k, v)
	if !ok {
		return nil, true
	}
	return &cached{text: string(c.text), svc: e.svc}, true
}

// chunkPrefix makes the text of a chunk a file of one service.
const chunkPrefix = "services:\n"

// parseChunk parses the text of a chunk as the file chunkPrefix+text and
// returns the key and value of its one service, with the lines they have in
// the whole file. It reports false unless the text is one entry of the
// services mapping without anchors, aliases, merge keys or block scalars:
// then it parses alone as it does in the file, because the YAML parser
// is in the same state at the start of each chunk, and the parse of each
// chunk ends where the chunk does.
func parseChunk(c chunk) (k, v *yaml.Node, ok bool) {
	data := make([]byte, 0, len(chunkPrefix)+len(c.text))
	data = append(append(data, chunkPrefix...), c.text...)
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 {
		return nil, nil, false
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || len(root.Content) != 2 {
		return nil, nil, false
	}
	m := root.Content[1]
	if m.Kind != yaml.MappingNode || m.Style != 0 || len(m.Content) != 2 {
		return nil, nil, false
	}
	k, v = m.Content[0], m.Content[1]
	if k.Kind != yaml.ScalarNode || k.Style != 0 || k.Value != c.name || k.Line != 2 {
		return nil, nil, false
	}
	shift := c.line - k.Line
	return k, v, relocate(k, shift) && relocate(v, shift)
}

// relocate adds shift to the line of n and of every node in it. It reports
// false if one of them is an anchor, an alias, a merge key or a block
// scalar: an alias may name an anchor of another service, a merge key
// needs one, and a block scalar has no use in the file; leaving them out
// keeps the reasoning of parseChunk short.
func relocate(n *yaml.Node, shift int) bool {
	if n.Anchor != "" || n.Kind == yaml.AliasNode || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
		n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge" {
		return false
	}
	n.Line += shift
	for _, c := range n.Content {
		if !relocate(c, shift) {
			return false
		}
	}
	return true
}
