package file

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cutoverproxy/cutover/discovery"
)

// backends parses a service's backends list (key is its dotted name, line
// the line of the backends key) into endpoints.
func (p *parser) backends(key, service string, n *yaml.Node, line int) []discovery.Endpoint {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(line, key, "want a list of host:port addresses or {address, weight} mappings")
		return nil
	}
	var eps []discovery.Endpoint
	first := map[string]int{} // address → line
	for i, item := range n.Content {
		ikey := itemKey{key, i}
		ep, ok := p.backend(ikey, item)
		if !ok {
			continue
		}
		if l, dup := first[ep.Address]; dup {
			p.fail(item.Line, ikey.String(), "address %s is listed twice (first at line %d)", ep.Address, l)
			continue
		}
		first[ep.Address] = item.Line
		ep.ID, ep.Name = "file:"+service+"/"+ep.Address, ep.Address
		eps = append(eps, ep)
	}
	return eps
}

// itemKey is the dotted key of a list item, e.g. services.web.backends[2],
// formatted only for a problem.
type itemKey struct {
	list string
	i    int
}

func (k itemKey) String() string { return k.list + "[" + strconv.Itoa(k.i) + "]" }

// backend parses one item of a backends list: "host:port" or
// {address: host:port, weight: N}.
func (p *parser) backend(ik itemKey, item *yaml.Node) (discovery.Endpoint, bool) {
	n := deref(item)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		addr, err := parseAddress(n.Value)
		if err != nil {
			p.fail(item.Line, ik.String(), "%v", err)
			return discovery.Endpoint{}, false
		}
		return discovery.Endpoint{Address: addr, Weight: 1}, true
	}
	key := ik.String()
	if n.Kind != yaml.MappingNode {
		p.fail(item.Line, key, "want host:port or {address: host:port, weight: N}")
		return discovery.Endpoint{}, false
	}
	ep := discovery.Endpoint{Weight: 1}
	ok, hasAddress := true, false
	p.pairs(n, key+".", func(k, v *yaml.Node, full string) {
		var err error
		switch {
		case k.Value != "address" && k.Value != "weight":
			err = fmt.Errorf("unknown key; a backend has address and weight")
		case v.Kind != yaml.ScalarNode || isNull(v):
			err = fmt.Errorf("want one value")
		case k.Value == "address":
			ep.Address, err = parseAddress(v.Value)
			hasAddress = true
		default:
			ep.Weight, err = parseWeight(v.Value)
		}
		if err != nil {
			p.fail(k.Line, full, "%v", err)
			ok = false
		}
	})
	if !hasAddress && ok {
		p.fail(item.Line, key, "want an address: {address: host:port, weight: N}")
		ok = false
	}
	return ep, ok
}

// parseAddress checks a backend address and returns it in canonical form
// (port without leading zeros, IPv6 hosts in brackets), so that two
// spellings of one address count as duplicates.
func parseAddress(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want host:port, e.g. 127.0.0.1:9001, app:8080 or [::1]:9001", s)
	}
	if host == "" {
		return "", fmt.Errorf("%q: want a host before the port", s)
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
		return "", fmt.Errorf("%q: want a host name or IP address without spaces or '/'", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: want a port from 1 to 65535", s)
	}
	if canonical := strconv.Itoa(n); canonical != port || strings.Contains(host, ":") || s[0] == '[' {
		return net.JoinHostPort(host, canonical), nil
	}
	return s, nil
}

func parseWeight(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("%q: want a whole number from 1 to 1000", s)
	}
	return n, nil
}
