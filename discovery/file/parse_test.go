package file

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

const example = `services:
  web:
    host: example.com, www.example.com
    path: /
    balance: leastconn
    health:            # nested maps are flattened to dotted keys: health.path
      path: /healthz
    routes:
      api: {host: api.example.com, path: /v1}
    backends: [127.0.0.1:9001, {address: 127.0.0.1:9002, weight: 2}]
`

func ep(service, addr string, weight int) discovery.Endpoint {
	return discovery.Endpoint{ID: "file:" + service + "/" + addr, Name: addr, Address: addr, Weight: weight}
}

func rt(host, path string) discovery.Route { return discovery.Route{Host: host, Path: path} }

// validFiles are the inputs of TestParseValid, and of the differential
// tests of the reparser.
var validFiles = []struct {
	name string
	yaml string
	want []discovery.Service
}{
	{
		name: "the documented example",
		yaml: example,
		want: []discovery.Service{{
			Name: "web", Provider: "file",
			Routes: []discovery.Route{rt("api.example.com", "/v1"), rt("example.com", "/"), rt("www.example.com", "/")},
			Options: discovery.Options{
				Balance: discovery.Balance{Policy: discovery.LeastConn},
				Health:  discovery.Health{Path: "/healthz"},
			},
			Endpoints: []discovery.Endpoint{ep("web", "127.0.0.1:9001", 1), ep("web", "127.0.0.1:9002", 2)},
		}},
	},
	{name: "empty services", yaml: "services: {}\n"},
	{name: "null services", yaml: "services:\n"},
	{name: "trailing empty document", yaml: "services: {}\n---\n"},
	{
		name: "service without keys is the catch-all without backends",
		yaml: "services:\n  all:\n",
		want: []discovery.Service{{Name: "all", Provider: "file", Routes: []discovery.Route{rt("", "/")}}},
	},
	{
		name: "dotted keys, host list, null host",
		yaml: `services:
  a:
    host: [A.example.com, b.example.com]
    health.path: /hz
    health.interval: 5s
    protocol: h2c
  b:
    host: null
    path: /b/
    routes.x.path: /x
`,
		want: []discovery.Service{
			{Name: "a", Provider: "file",
				Routes: []discovery.Route{rt("a.example.com", "/"), rt("b.example.com", "/")},
				Options: discovery.Options{Protocol: discovery.H2C,
					Health: discovery.Health{Path: "/hz", Interval: 5 * time.Second}}},
			{Name: "b", Provider: "file", Routes: []discovery.Route{rt("", "/b"), rt("", "/x")}},
		},
	},
	{
		name: "named routes only inherit the service's options and host",
		yaml: `services:
  app:
    balance: cookie:sid
    health: {path: /up, rise: 3}
    routes:
      v1: {path: /v1, host: [v1.example.com]}
      v2:
        path: /v2
        host: v2.example.com
      admin:
        health.path: /up
`,
		want: []discovery.Service{{Name: "app", Provider: "file",
			Routes: []discovery.Route{rt("", "/"), rt("v1.example.com", "/v1"), rt("v2.example.com", "/v2")},
			Options: discovery.Options{
				Balance: discovery.Balance{Policy: discovery.Cookie, Name: "sid"},
				Health:  discovery.Health{Path: "/up", Rise: 3},
			}}},
	},
	{
		name: "a route given twice by one service is one route",
		yaml: "services:\n  a:\n    host: a.com\n    routes: {x: {host: a.com}}\n",
		want: []discovery.Service{{Name: "a", Provider: "file", Routes: []discovery.Route{rt("a.com", "/")}}},
	},
	{
		name: "catch-all and host services beside each other",
		yaml: "services:\n  default: {}\n  api: {host: api.com}\n  api2: {host: api.com, path: /v2}\n",
		want: []discovery.Service{
			{Name: "api", Provider: "file", Routes: []discovery.Route{rt("api.com", "/")}},
			{Name: "api2", Provider: "file", Routes: []discovery.Route{rt("api.com", "/v2")}},
			{Name: "default", Provider: "file", Routes: []discovery.Route{rt("", "/")}},
		},
	},
	{
		name: "backend forms and canonical addresses",
		yaml: `services:
  b:
    backends:
      - app:8080
      - "[::1]:9000"
      - {address: 10.0.0.1:080, weight: 1000}
      - address: localhost:1
        weight: "3"
`,
		want: []discovery.Service{{Name: "b", Provider: "file", Routes: []discovery.Route{rt("", "/")},
			Endpoints: []discovery.Endpoint{
				ep("b", "10.0.0.1:80", 1000), ep("b", "[::1]:9000", 1), ep("b", "app:8080", 1), ep("b", "localhost:1", 3),
			}}},
	},
	{
		name: "anchors and aliases",
		yaml: `services:
  a:
    host: a.com
    health: &h {path: /hz, fall: 5}
    backends: &be [10.0.0.1:80]
  b:
    host: b.com
    health: *h
    backends: *be
`,
		want: []discovery.Service{
			{Name: "a", Provider: "file", Routes: []discovery.Route{rt("a.com", "/")},
				Options:   discovery.Options{Health: discovery.Health{Path: "/hz", Fall: 5}},
				Endpoints: []discovery.Endpoint{ep("a", "10.0.0.1:80", 1)}},
			{Name: "b", Provider: "file", Routes: []discovery.Route{rt("b.com", "/")},
				Options:   discovery.Options{Health: discovery.Health{Path: "/hz", Fall: 5}},
				Endpoints: []discovery.Endpoint{ep("b", "10.0.0.1:80", 1)}},
		},
	},
}

func TestParseValid(t *testing.T) {
	for _, tt := range validFiles {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("cutover.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := discovery.Snapshot{Services: tt.want}
			if !got.Equal(want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// invalidFiles are the inputs of TestParseErrors, and of the differential
// tests of the reparser.
var invalidFiles = []struct {
	name string
	yaml string
	want []string // each problem, in order; a prefix of its message
}{
	{
		name: "the documented example with a bad policy",
		yaml: strings.Replace(example, "balance: leastconn", "balance: foo", 1),
		want: []string{`cutover.yaml:5: services.web.balance: unknown policy "foo": want roundrobin, leastconn`},
	},
	{
		name: "two services on one tcp.listen port, one with a route conflict too",
		yaml: "services:\n  db:\n    protocol: tcp\n    tcp.listen: 5432\n    backends: [10.0.0.1:5432]\n" +
			"  web:\n    host: a.test\n  copy:\n    host: a.test\n    tcp.listen: 5432\n",
		want: []string{
			"cutover.yaml:8: services.copy.tcp.listen: port 5432 is already the listener of service db: give each service its own port",
			"cutover.yaml:8: services.copy: route a.test/ is already served by service web: give each service its own host or path",
		},
	},
	{
		name: "invalid YAML with a line",
		yaml: "services:\n  web: [\n",
		want: []string{"cutover.yaml:2: invalid YAML: did not find expected node content"},
	},
	{
		name: "invalid YAML without a line",
		yaml: "services: a: b\n",
		want: []string{"cutover.yaml: invalid YAML: mapping values are not allowed"},
	},
	{
		name: "tab indentation",
		yaml: "services:\n\tweb: {}\n",
		want: []string{"cutover.yaml:2: invalid YAML: found character that cannot start any token"},
	},
	{
		name: "unknown anchor",
		yaml: "services:\n  web: *nope\n",
		want: []string{"cutover.yaml: invalid YAML: unknown anchor 'nope' referenced"},
	},
	{
		name: "second document",
		yaml: "services: {}\n---\nservices: {}\n",
		want: []string{"cutover.yaml:3: a second YAML document"},
	},
	{name: "empty file", yaml: "", want: []string{"cutover.yaml: the file is empty: write services: {}"}},
	{name: "only comments", yaml: "# nothing yet\n\n", want: []string{"cutover.yaml: the file is empty"}},
	{name: "null document", yaml: "---\n", want: []string{"cutover.yaml: the file is empty"}},
	{name: "no services key", yaml: "{}\n", want: []string{"cutover.yaml:1: no services key: write services: {}"}},
	{
		name: "root is a list",
		yaml: "- web\n",
		want: []string{"cutover.yaml:1: want a mapping with the key services"},
	},
	{
		name: "unknown top-level keys",
		yaml: "service:\n  web: {}\nservices: {}\nversion: 2\n",
		want: []string{
			"cutover.yaml:1: service: unknown top-level key: the only one is services",
			"cutover.yaml:4: version: unknown top-level key",
		},
	},
	{
		name: "services given twice",
		yaml: "services: {}\nservices: {}\n",
		want: []string{"cutover.yaml:2: services: given twice (first at line 1)"},
	},
	{
		name: "services is a list",
		yaml: "services:\n  - web\n",
		want: []string{"cutover.yaml:1: services: want a mapping from service names to services"},
	},
	{
		name: "bad service names and bodies",
		yaml: "services:\n  -web: {}\n  a b: {}\n  ok: [x]\n  ok2: just text\n",
		want: []string{
			"cutover.yaml:2: services.-web: service name: want letters",
			"cutover.yaml:3: services.a b: service name: want letters",
			"cutover.yaml:4: services.ok: want a mapping of keys such as host, path and backends",
			"cutover.yaml:5: services.ok2: want a mapping of keys",
		},
	},
	{
		name: "service given twice",
		yaml: "services:\n  web: {}\n  api: {host: a.com}\n  web: {host: a.com}\n",
		want: []string{"cutover.yaml:4: services.web: given twice (first at line 2)"},
	},
	{
		name: "every problem of a service, sorted by line",
		yaml: `services:
  web:
    weight: 0
    host: bad host
    port: 8080
    path: api
    hots: x
    health:
      pth: /x
      interval: 0s
    protocol: [http]
`,
		want: []string{
			"cutover.yaml:3: services.web.weight: not used in a file: give each backend its own weight",
			`cutover.yaml:4: services.web.host: host "bad host": character ' ' is not allowed`,
			"cutover.yaml:5: services.web.port: not used in a file: a file service has no container port: list host:port addresses under backends",
			`cutover.yaml:6: services.web.path: want a path prefix that starts with /`,
			"cutover.yaml:7: services.web.hots: unknown key; known keys are balance, health.fall,",
			"cutover.yaml:9: services.web.health.pth: unknown key",
			"cutover.yaml:10: services.web.health.interval: want a positive duration",
			"cutover.yaml:11: services.web.protocol: want one value, not a list (only host and backends take lists)",
		},
	},
	{
		name: "container keys in a file",
		yaml: `services:
  web:
    enable: true
    service: other
    network: front
    routes:
      api:
        port: 80
        host: api.com
`,
		want: []string{
			"cutover.yaml:3: services.web.enable: not used in a file: every service in the file is served",
			"cutover.yaml:4: services.web.service: not used in a file: a file service is named by its key under services",
			"cutover.yaml:5: services.web.network: not used in a file: backends are dialled at their address",
			"cutover.yaml:8: services.web.routes.api.port: not used in a file: a file service has no container port",
		},
	},
	{
		name: "a key given twice, in two forms or twice the same",
		yaml: "services:\n  web:\n    health.path: /a\n    health: {path: /b}\n    host: a.com\n    host: b.com\n",
		want: []string{
			"cutover.yaml:4: services.web.health.path: given twice (first at line 3)",
			"cutover.yaml:6: services.web.host: given twice (first at line 5)",
		},
	},
	{
		name: "scalar where a mapping belongs",
		yaml: "services:\n  web:\n    health: /hz\n    routes: api\n",
		want: []string{
			"cutover.yaml:3: services.web.health: want a mapping of health keys, e.g. health: {path: /healthz}",
			"cutover.yaml:4: services.web.routes: want a mapping of route names",
		},
	},
	{
		name: "empty mappings: under a group they set nothing, else they are reported",
		yaml: "services:\n  web:\n    host: a.com\n    foo: {}\n    health: {}\n    tls: {}\n    routes:\n      api: {}\n      ok: {host: b.com, health: {}}\n    deploy: {}\n",
		want: []string{
			"cutover.yaml:4: services.web.foo: unknown key",
			"cutover.yaml:8: services.web.routes.api: want routes.NAME.KEY",
			"cutover.yaml:10: services.web.deploy: unknown key",
		},
	},
	{
		name: "bad routes",
		yaml: "services:\n  web:\n    routes:\n      API: {host: a.com}\n      ok: {hots: a.com}\n      x:\n",
		want: []string{
			"cutover.yaml:4: services.web.routes.API.host: want routes.NAME.KEY with NAME of lowercase letters",
			"cutover.yaml:5: services.web.routes.ok.hots: unknown key",
			"cutover.yaml:6: services.web.routes.x: want routes.NAME.KEY",
		},
	},
	{
		name: "host list with a non-string item, and a list for health.host",
		yaml: "services:\n  web:\n    host:\n      - a.com\n      - {b: c}\n    health:\n      host: [a.com]\n",
		want: []string{
			"cutover.yaml:5: services.web.host[1]: want a host name",
			"cutover.yaml:7: services.web.health.host: want one value, not a list",
		},
	},
	{
		name: "too deep and merge keys",
		yaml: "services:\n  web:\n    routes:\n      api:\n        health:\n          path: {x: 1}\n    defaults: &d {path: /}\n    x:\n      <<: *d\n",
		want: []string{
			"cutover.yaml:6: services.web.routes.api.health.path: unknown key",
			"cutover.yaml:7: services.web.defaults.path: unknown key",
			"cutover.yaml:9: services.web.x.<<: YAML merge keys are not supported: write the keys out",
		},
	},
	{
		name: "alias cycle",
		yaml: "services:\n  web: &w\n    routes: {a: *w}\n",
		want: []string{"cutover.yaml:"},
	},
	{
		name: "routes that disagree on options",
		yaml: `services:
  web:
    host: a.com
    balance: leastconn
    routes:
      api:
        host: api.a.com
        balance: p2c
        health.path: /hz
      ok: {host: ok.a.com}
`,
		want: []string{
			"cutover.yaml:8: services.web.routes.api: options differ from those of the service's top-level keys (balance, health): balance, protocol and health apply to the whole service",
		},
	},
	{
		name: "named routes that disagree with each other",
		yaml: "services:\n  web:\n    routes:\n      a: {protocol: tcp}\n      b: {path: /b}\n",
		want: []string{"cutover.yaml:5: services.web.routes.b: options differ from those of route a (protocol)"},
	},
	{
		name: "bad backends",
		yaml: `services:
  web:
    backends:
      - localhost
      - localhost:0
      - :80
      - a:99999
      - a:http
      - http://a:80
      - "a b:80"
      - [a:80]
      - {address: 10.0.0.1:80, weight: 0}
      - {address: 10.0.0.2:80, weight: x}
      - {address: 10.0.0.3:80, wieght: 2}
      - {weight: 2}
      - {address: [a:1]}
      - 10.0.0.9:80
      - 10.0.0.9:0080
      -
  api:
    backends: 10.0.0.1:80
`,
		want: []string{
			`cutover.yaml:4: services.web.backends[0]: "localhost": want host:port`,
			`cutover.yaml:5: services.web.backends[1]: "localhost:0": want a port from 1 to 65535`,
			`cutover.yaml:6: services.web.backends[2]: ":80": want a host before the port`,
			`cutover.yaml:7: services.web.backends[3]: "a:99999": want a port from 1 to 65535`,
			`cutover.yaml:8: services.web.backends[4]: "a:http": want a port`,
			`cutover.yaml:9: services.web.backends[5]: "http://a:80": want host:port`,
			`cutover.yaml:10: services.web.backends[6]: "a b:80": want a host name or IP address without spaces`,
			"cutover.yaml:11: services.web.backends[7]: want host:port or {address: host:port, weight: N}",
			`cutover.yaml:12: services.web.backends[8].weight: "0": want a whole number from 1 to 1000`,
			`cutover.yaml:13: services.web.backends[9].weight: "x": want a whole number`,
			"cutover.yaml:14: services.web.backends[10].wieght: unknown key; a backend has address and weight",
			"cutover.yaml:15: services.web.backends[11]: want an address",
			"cutover.yaml:16: services.web.backends[12].address: want one value",
			"cutover.yaml:18: services.web.backends[14]: address 10.0.0.9:80 is listed twice (first at line 17)",
			"cutover.yaml:19: services.web.backends[15]: want host:port or {address",
			"cutover.yaml:21: services.api.backends: want a list of host:port addresses",
		},
	},
	{
		name: "two catch-alls",
		yaml: "services:\n  a: {}\n  b:\n    backends: [10.0.0.1:80]\n",
		want: []string{"cutover.yaml:3: services.b: route (any host)/ is already served by service a: give each service its own host or path"},
	},
	{
		name: "same host and path in two services, reported at the later one",
		yaml: `services:
  web: {host: [a.com, b.com], path: /x/}
  zz: {host: c.com}
  api:
    routes:
      one: {host: a.com, path: /x}
      two: {host: b.com, path: /x}
      three: {host: c.com}
`,
		want: []string{
			"cutover.yaml:4: services.api: route a.com/x is already served by service web",
			"cutover.yaml:4: services.api: route c.com/ is already served by service zz", // routes in name order
			"cutover.yaml:4: services.api: route b.com/x is already served by service web",
		},
	},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range invalidFiles {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := Parse("cutover.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", snap)
			}
			if len(snap.Services) != 0 {
				t.Errorf("Parse returned services with an error: %+v", snap.Services)
			}
			var got []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				got = j.Unwrap()
			}
			for i, e := range got {
				var p discovery.Problem
				if !errors.As(e, &p) || p.Provider != "file" {
					t.Errorf("problem %d is %T %v, want a discovery.Problem of provider file", i, e, e)
				}
				if i < len(tt.want) && !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, e, tt.want[i])
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
		})
	}
}

func TestParseNamesThePath(t *testing.T) {
	_, err := Parse("/etc/cutover/cutover.yaml", []byte("services:\n  web: {port: 80}\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "/etc/cutover/cutover.yaml:2: services.web.port: ") {
		t.Errorf("error = %v, want it to start with the path and line", err)
	}
}
