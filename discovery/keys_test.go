package discovery

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// route returns the RouteSpec that ParseKeys yields for a route that sets
// nothing but a name, hosts and a path: the defaults everywhere else.
func route(name, path string, hosts ...string) RouteSpec {
	if len(hosts) == 0 {
		hosts = nil
	}
	return RouteSpec{Name: name, Hosts: hosts, Path: path, Weight: 1}
}

// with returns r changed by fn, to write expected routes compactly.
func with(r RouteSpec, fn func(*RouteSpec)) RouteSpec {
	fn(&r)
	return r
}

func TestParseKeys(t *testing.T) {
	leastconn := Balance{Policy: LeastConn}
	tests := []struct {
		name    string
		keys    map[string]string
		want    Spec
		errKeys []string // keys of the expected errors, in order
	}{
		{
			name: "no keys is one catch-all route",
			want: Spec{Routes: []RouteSpec{route("", "/")}},
		},
		{
			name: "short form",
			keys: map[string]string{"host": " Example.com, www.example.com ", "path": "/api/"},
			want: Spec{Routes: []RouteSpec{route("", "/api", "example.com", "www.example.com")}},
		},
		{
			name: "short form with every key",
			keys: map[string]string{
				"host": "a.example.com", "path": "/", "port": "8080", "service": "api",
				"network": "front", "weight": "10", "balance": "leastconn", "protocol": "h2c",
				"health.path": "/healthz?full=1", "health.port": "9000", "health.host": "Health.Example.com",
				"health.mode": "http", "health.interval": "5s", "health.timeout": "500ms",
				"health.rise": "3", "health.fall": "4", "health.status": "200 - 299", "health.slowstart": "1m",
			},
			want: Spec{Routes: []RouteSpec{{
				Hosts: []string{"a.example.com"}, Path: "/", Port: 8080, Service: "api",
				Network: "front", Weight: 10,
				Options: Options{Balance: leastconn, Protocol: H2C, Health: Health{
					Path: "/healthz?full=1", Port: 9000, Host: "health.example.com", Mode: "http",
					Interval: 5 * time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 4,
					StatusMin: 200, StatusMax: 299, SlowStart: time.Minute,
				}},
			}}},
		},
		{
			name: "values are trimmed",
			keys: map[string]string{"port": " 8080 ", "protocol": "\ttcp\n", "health.status": " 204 "},
			want: Spec{Routes: []RouteSpec{with(route("", "/"), func(r *RouteSpec) {
				r.Port, r.Options.Protocol = 8080, TCP
				r.Options.Health.StatusMin, r.Options.Health.StatusMax = 204, 204
			})}},
		},
		{
			name: "empty host list is the catch-all",
			keys: map[string]string{"host": " , ,"},
			want: Spec{Routes: []RouteSpec{route("", "/")}},
		},
		{
			name: "hosts deduplicated and sorted",
			keys: map[string]string{"host": "b.com,A.com,a.com,*.B.com"},
			want: Spec{Routes: []RouteSpec{route("", "/", "*.b.com", "a.com", "b.com")}},
		},
		{
			name: "enable",
			keys: map[string]string{"enable": "true", "host": "a.com"},
			want: Spec{Enable: true, EnableSet: true, Routes: []RouteSpec{route("", "/", "a.com")}},
		},
		{
			name: "enable false still parses routes",
			keys: map[string]string{"enable": "0", "host": "a.com"},
			want: Spec{EnableSet: true, Routes: []RouteSpec{route("", "/", "a.com")}},
		},
		{
			name:    "bad enable drops no route",
			keys:    map[string]string{"enable": "yes", "host": "a.com"},
			want:    Spec{Routes: []RouteSpec{route("", "/", "a.com")}},
			errKeys: []string{"enable"},
		},
		{
			name: "explicit form only: no short-form route",
			keys: map[string]string{"routes.api.host": "api.com", "routes.api.path": "/v1"},
			want: Spec{Routes: []RouteSpec{route("api", "/v1", "api.com")}},
		},
		{
			name: "named routes inherit top-level keys they do not set",
			keys: map[string]string{
				"balance": "leastconn", "port": "8080", "health.path": "/hz", "weight": "5",
				"routes.api.host": "api.com",
				"routes.web.host": "web.com", "routes.web.port": "9090", "routes.web.health.path": "/up",
			},
			want: Spec{Routes: []RouteSpec{
				with(route("api", "/", "api.com"), func(r *RouteSpec) {
					r.Port, r.Weight, r.Options.Balance, r.Options.Health.Path = 8080, 5, leastconn, "/hz"
				}),
				with(route("web", "/", "web.com"), func(r *RouteSpec) {
					r.Port, r.Weight, r.Options.Balance, r.Options.Health.Path = 9090, 5, leastconn, "/up"
				}),
			}},
		},
		{
			name: "named routes inherit every health key",
			keys: map[string]string{
				"health.path": "/hz", "health.port": "81", "health.host": "h.com", "health.mode": "tcp",
				"health.interval": "1s", "health.timeout": "2s", "health.rise": "5", "health.fall": "6",
				"health.status": "200-204", "health.slowstart": "3s", "protocol": "tcp",
				"network": "n", "service": "s", "routes.a.path": "/a",
			},
			want: Spec{Routes: []RouteSpec{with(route("a", "/a"), func(r *RouteSpec) {
				r.Network, r.Service, r.Options.Protocol = "n", "s", TCP
				r.Options.Health = Health{
					Path: "/hz", Port: 81, Host: "h.com", Mode: "tcp", Interval: time.Second,
					Timeout: 2 * time.Second, Rise: 5, Fall: 6, StatusMin: 200, StatusMax: 204,
					SlowStart: 3 * time.Second,
				}
			})}},
		},
		{
			name: "short form with a host of its own exists beside named routes",
			keys: map[string]string{"host": "a.com", "routes.api.path": "/v1", "routes.x.host": "x.com"},
			want: Spec{Routes: []RouteSpec{
				route("", "/", "a.com"),
				route("api", "/v1", "a.com"), // inherits the host
				route("x", "/", "x.com"),
			}},
		},
		{
			name: "short form with a path of its own exists beside named routes",
			keys: map[string]string{"path": "/p", "routes.api.host": "api.com"},
			want: Spec{Routes: []RouteSpec{route("", "/p"), route("api", "/p", "api.com")}},
		},
		{
			name: "bad top-level key drops only the routes that inherit it",
			keys: map[string]string{
				"balance":         "foo",
				"routes.api.host": "api.com",
				"routes.web.host": "web.com", "routes.web.balance": "p2c",
			},
			want: Spec{Routes: []RouteSpec{with(route("web", "/", "web.com"), func(r *RouteSpec) {
				r.Options.Balance = Balance{Policy: P2C}
			})}},
			errKeys: []string{"balance"},
		},
		{
			name:    "bad top-level host drops the short form but not a route with its own host",
			keys:    map[string]string{"host": "bad host", "routes.api.host": "api.com", "routes.web.path": "/w"},
			want:    Spec{Routes: []RouteSpec{route("api", "/", "api.com")}},
			errKeys: []string{"host"},
		},
		{
			name: "bad named route drops only itself",
			keys: map[string]string{
				"host": "a.com", "routes.api.port": "0", "routes.api.host": "api.com",
				"routes.web.host": "web.com",
			},
			// web sets its own host, so it does not inherit a.com.
			want:    Spec{Routes: []RouteSpec{route("", "/", "a.com"), route("web", "/", "web.com")}},
			errKeys: []string{"routes.api.port"},
		},
		{
			name:    "unknown top-level key drops the short form, keeps named routes",
			keys:    map[string]string{"hots": "a.com", "routes.api.host": "api.com"},
			want:    Spec{Routes: []RouteSpec{route("api", "/", "api.com")}},
			errKeys: []string{"hots"},
		},
		{
			name:    "unknown top-level key without named routes",
			keys:    map[string]string{"host": "a.com", "helth.path": "/hz"},
			want:    Spec{},
			errKeys: []string{"helth.path"},
		},
		{
			name:    "unknown key in a named route drops it",
			keys:    map[string]string{"routes.api.hots": "api.com", "routes.web.host": "web.com"},
			want:    Spec{Routes: []RouteSpec{route("web", "/", "web.com")}},
			errKeys: []string{"routes.api.hots"},
		},
		{
			name:    "enable is not a route key",
			keys:    map[string]string{"routes.api.enable": "true", "routes.web.host": "web.com"},
			want:    Spec{Routes: []RouteSpec{route("web", "/", "web.com")}},
			errKeys: []string{"routes.api.enable"},
		},
		{
			name: "malformed routes keys create no route",
			keys: map[string]string{
				"routes.api": "x", "routes..host": "x", "routes.API.host": "x",
				"routes.a b.host": "x", "routes." + strings.Repeat("a", 64) + ".host": "x",
				"host": "a.com",
			},
			want: Spec{Routes: []RouteSpec{route("", "/", "a.com")}},
			errKeys: []string{
				"routes..host", "routes.API.host", "routes.a b.host",
				"routes." + strings.Repeat("a", 64) + ".host", "routes.api",
			},
		},
		{
			name: "route names of 63 characters, digits, '-' and '_'",
			keys: map[string]string{"routes." + strings.Repeat("a", 63) + ".path": "/a", "routes.0-_.path": "/b"},
			want: Spec{Routes: []RouteSpec{route("0-_", "/b"), route(strings.Repeat("a", 63), "/a")}},
		},
		{
			name:    "errors are reported in key order",
			keys:    map[string]string{"weight": "0", "port": "x", "balance": "x", "enable": "x"},
			want:    Spec{},
			errKeys: []string{"balance", "enable", "port", "weight"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseKeys(tt.keys)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("spec:\n got %+v\nwant %+v", got, tt.want)
			}
			if keys := errorKeys(errs); !slices.Equal(keys, tt.errKeys) {
				t.Errorf("error keys = %q, want %q (errors: %v)", keys, tt.errKeys, errs)
			}
		})
	}
}

func errorKeys(errs []KeyError) []string {
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Key)
	}
	return keys
}

// TestParseKeysValues checks every key's valid and invalid values, both in
// the short form (where a bad value leaves no route) and in a named route
// (where it drops only that route).
func TestParseKeysValues(t *testing.T) {
	tests := []struct {
		key     string
		valid   []string
		invalid []string
	}{
		{"host", []string{"a.com", "*.a.com", "A.COM", "a.com,b.com", "127.0.0.1", "a_b.com", "xn--bcher-kva.example", ""},
			[]string{"a.com:80", "*", "a.*.com", "*.*.a.com", "-a.com", "a-.com", "a..com", "a.com.", "bücher.de", "\u212aelvin.com", "[::1]", "a b.com", "a.com,b c"}},
		{"path", []string{"/", "/api", "/api/", "/a%20b", "/ü"},
			[]string{"", "api", "/a b", "/a?b", "/a#b", "/a\tb", "/a\x7f"}},
		{"port", []string{"1", "65535", "+80"}, []string{"", "0", "65536", "-1", "x", "80.0"}},
		{"service", []string{"a", "A.b_c-d", strings.Repeat("a", 128)},
			[]string{"", ".a", "-a", "a/b", "a b", strings.Repeat("a", 129)}},
		{"network", []string{"front", "my_net"}, []string{""}},
		{"weight", []string{"1", "1000"}, []string{"0", "1001", "1.5", "x", ""}},
		{"balance", []string{"", "roundrobin", "leastconn", "p2c", "random", "hash:source", "hash:header:X-User", "cookie:SID"},
			[]string{"foo", "RoundRobin", "hash", "hash:", "hash:header:", "hash:header:a b", "cookie:", "cookie:a;b"}},
		{"protocol", []string{"http", "h2c", "tcp", "https"}, []string{"", "HTTP", "udp", "h2"}},
		{"tls", []string{"true", "false", "1"}, []string{"", "yes", "on"}},
		{"redirect-https", []string{"true", "false"}, []string{"", "always"}},
		{"hsts", []string{"max-age=31536000", "max-age=0; includeSubDomains", "max-age=63072000; includeSubDomains; preload"},
			[]string{"", "31536000", "max-age=", "max-age=x", "max-age=1; includeEverything"}},
		{"tls.acme", []string{"true", "false"}, []string{"", "letsencrypt"}},
		{"tls.passthrough", []string{"true", "false"}, []string{"", "x"}},
		{"tcp.listen", []string{"1", "5432", "65535"}, []string{"", "0", "65536", "x"}},
		{"proxy-protocol", []string{"v1", "v2"}, []string{"", "1", "v3", "true"}},
		{"tcp.idle-timeout", []string{"1s", "10m", "1h30m"}, []string{"", "0", "off", "-1s", "999ms", "10ms", "5", "x"}},
		{"health.path", []string{"/", "/healthz", "/h?x=1"}, []string{"", "healthz", "/a b", "/a\x00"}},
		{"health.port", []string{"1", "65535"}, []string{"0", "65536", "x"}},
		{"health.host", []string{"", "a.com", "A.com"}, []string{"*.a.com", "a.com,b.com", "a.com,", "a.com:80", "a b", "*"}},
		{"health.mode", []string{"http", "tcp"}, []string{"", "HTTP", "https"}},
		{"health.interval", []string{"1ms", "2s", "1m30s"}, []string{"", "0", "0s", "-1s", "5", "x"}},
		{"health.timeout", []string{"500ms"}, []string{"0s", "-1s", "x"}},
		{"health.rise", []string{"1", "100"}, []string{"0", "101", "x"}},
		{"health.fall", []string{"1", "100"}, []string{"0", "101", "x"}},
		{"health.status", []string{"200", "200-399", "100-599", "204 - 204"},
			[]string{"", "99", "600", "300-200", "200-", "-200", "200-300-400", "x"}},
		{"health.slowstart", []string{"30s"}, []string{"0", "-5s", "x"}},
	}
	for _, tt := range tests {
		for _, v := range tt.valid {
			for _, key := range []string{tt.key, "routes.r." + tt.key} {
				spec, errs := ParseKeys(map[string]string{key: v})
				if len(errs) != 0 || len(spec.Routes) != 1 {
					t.Errorf("%s=%q: got %d routes and errors %v, want 1 route and no error", key, v, len(spec.Routes), errs)
				}
			}
		}
		for _, v := range tt.invalid {
			spec, errs := ParseKeys(map[string]string{tt.key: v})
			if len(errs) != 1 || errs[0].Key != tt.key || errs[0].Message == "" || len(spec.Routes) != 0 {
				t.Errorf("%s=%q: got routes %+v and errors %v, want no route and one error", tt.key, v, spec.Routes, errs)
			}
			// In a named route the bad value drops only that route.
			key := "routes.bad." + tt.key
			spec, errs = ParseKeys(map[string]string{key: v, "routes.good.path": "/g"})
			if len(errs) != 1 || errs[0].Key != key || len(spec.Routes) != 1 || spec.Routes[0].Name != "good" {
				t.Errorf("%s=%q: got routes %+v and errors %v, want route good and one error", key, v, spec.Routes, errs)
			}
		}
	}
}

func TestKeyErrorMessage(t *testing.T) {
	_, errs := ParseKeys(map[string]string{"weight": "0"})
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one", errs)
	}
	want := `weight="0": want a whole number from 1 to 1000`
	if got := errs[0].Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, errs = ParseKeys(map[string]string{"routes.a.hots": "x"})
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "health.path") {
		t.Errorf("unknown key error %v should list the known keys", errs)
	}
}

func TestContainerKeys(t *testing.T) {
	spec, errs := ParseKeys(map[string]string{"deploy.strategy": "recreate", "autoredeploy": "true",
		"deploy.id": "abc", "deploy.previous": "app:v1", "host": "a.test"})
	if len(errs) != 0 || spec.Strategy != "recreate" || !spec.Autoredeploy || len(spec.Routes) != 1 {
		t.Errorf("got %+v %v", spec, errs)
	}
	_, errs = ParseKeys(map[string]string{"deploy.strategy": "canary", "autoredeploy": "yes please"})
	if len(errs) != 2 {
		t.Errorf("errors %v, want one for each bad value", errs)
	}
}

func TestKnownKeys(t *testing.T) {
	keys := KnownKeys()
	if !slices.IsSorted(keys) || !slices.Contains(keys, "enable") || !slices.Contains(keys, "deploy.strategy") {
		t.Errorf("KnownKeys() = %q, want every key, sorted", keys)
	}
	for _, k := range keys {
		spec, errs := ParseKeys(map[string]string{k: "x"})
		for _, e := range errs {
			if strings.HasPrefix(e.Message, "unknown key") {
				t.Errorf("known key %q reported unknown (%+v)", k, spec)
			}
		}
	}
}

func TestRouteSpecRoutes(t *testing.T) {
	if got, want := route("", "/a").Routes(), []Route{{Path: "/a"}}; !slices.Equal(got, want) {
		t.Errorf("catch-all Routes() = %v, want %v", got, want)
	}
	got := route("", "/a", "a.com", "b.com").Routes()
	want := []Route{{Host: "a.com", Path: "/a"}, {Host: "b.com", Path: "/a"}}
	if !slices.Equal(got, want) {
		t.Errorf("Routes() = %v, want %v", got, want)
	}
}

func TestParseHosts(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(strings.Repeat("a", 49)+".", 5) + "abc" // 5*50+3 = 253
	tests := []struct {
		in      string
		want    []string
		wantErr string // substring of the error; "" for none
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{"a.com", []string{"a.com"}, ""},
		{" B.com , a.COM,b.com,,", []string{"a.com", "b.com"}, ""},
		{"*.A.com", []string{"*.a.com"}, ""},
		{"localhost", []string{"localhost"}, ""},
		{"a_b.c-d.com", []string{"a_b.c-d.com"}, ""},
		{long63 + ".com", []string{long63 + ".com"}, ""},
		{name253, []string{name253}, ""},
		{"*." + name253, []string{"*." + name253}, ""},
		{long63 + "a.com", nil, "1 to 63"},
		{name253 + "a", nil, "1 to 253"},
		{"a.com:8080", nil, "without port"},
		{"[::1]", nil, "without port"},
		{"*", nil, "not allowed"},
		{"*.", nil, "1 to 253"},
		{"a.*.com", nil, "not allowed"},
		{"*.*.com", nil, "not allowed"},
		{"*a.com", nil, "not allowed"},
		{"-a.com", nil, "inner '-'"},
		{"a-.com", nil, "inner '-'"},
		{"a..com", nil, "1 to 63"},
		{".a.com", nil, "1 to 63"},
		{"a.com.", nil, "1 to 63"},
		{"good.com,bad/.com", nil, `"bad/.com"`},
		{"bücher.de", nil, "punycode"},
		{"\u212aelvin.com", nil, "punycode"}, // KELVIN SIGN must not fold to "k"
		{"\xff.com", nil, "not allowed"},
	}
	for _, tt := range tests {
		got, err := ParseHosts(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseHosts(%q): unexpected error %v", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseHosts(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		case !slices.Equal(got, tt.want):
			t.Errorf("ParseHosts(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/api", "/api", true},
		{"/api/", "/api", true},
		{"/api//", "/api", true},
		{"//", "/", true},
		{"///", "/", true},
		{"/a/b/", "/a/b", true},
		{"/a%20b", "/a%20b", true},
		{"/ü", "/ü", true},
		{"", "", false},
		{"api", "", false},
		{" /api", "", false},
		{"/a b", "", false},
		{"/a\tb", "", false},
		{"/a\x00", "", false},
		{"/a\x7f", "", false},
		{"/a?b", "", false},
		{"/a#b", "", false},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err == nil {
			if again, _ := ParsePath(got); again != got {
				t.Errorf("ParsePath(%q) = %q is not canonical: parses to %q", tt.in, got, again)
			}
		}
	}
}

func TestParseServiceName(t *testing.T) {
	for _, v := range []string{"a", "A", "0", "web.prod_1-x", strings.Repeat("z", 128)} {
		if got, err := ParseServiceName(v); err != nil || got != v {
			t.Errorf("ParseServiceName(%q) = %q, %v; want it unchanged", v, got, err)
		}
	}
	for _, v := range []string{"", ".a", "_a", "-a", "a b", "a/b", "a:b", "é", strings.Repeat("z", 129)} {
		if _, err := ParseServiceName(v); err == nil {
			t.Errorf("ParseServiceName(%q): want an error", v)
		}
	}
}

func TestParseProtocol(t *testing.T) {
	for _, p := range []Protocol{HTTP, H2C, TCP} {
		if got, err := ParseProtocol(p.String()); err != nil || got != p {
			t.Errorf("ParseProtocol(%q) = %v, %v", p.String(), got, err)
		}
	}
	if Protocol(99).String() != "unknown" {
		t.Errorf("Protocol(99).String() = %q", Protocol(99).String())
	}
}

// FuzzParseKeys feeds arbitrary keys and values, one "key=value" per line,
// and checks the invariants every provider relies on.
func FuzzParseKeys(f *testing.F) {
	seeds := []string{
		"",
		"host=example.com\npath=/api",
		"host=A.com, *.b.com\nbalance=hash:header:x-user\nweight=5",
		"routes.api.host=api.com\nroutes.api.path=/v1/\nbalance=leastconn\nport=8080",
		"host=bad host\nroutes.api.host=x.com\nroutes.web.port=0",
		"health.path=/hz\nhealth.status=200-399\nhealth.interval=1s\nhealth.host=h.com",
		"enable=true\nroutes..host=x\nroutes.a=b\nhots=x",
		"path=//\nroutes.x.path=/a//\nroutes.x.weight=1000",
		"routes.a.health.host=a.com,b.com\nhealth.host=*.x.com",
		"host=\u212aelvin.com\nroutes.a.host=\u0130.com",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		keys := map[string]string{}
		for line := range strings.Lines(in) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
			keys[k] = v
		}
		spec, errs := ParseKeys(keys)
		checkSpec(t, keys, spec, errs)
		again, againErrs := ParseKeys(keys)
		if !reflect.DeepEqual(spec, again) || !reflect.DeepEqual(errs, againErrs) {
			t.Fatalf("ParseKeys is not deterministic")
		}
	})
}

// checkSpec checks the invariants of a ParseKeys result.
func checkSpec(t *testing.T, keys map[string]string, spec Spec, errs []KeyError) {
	t.Helper()
	for _, e := range errs {
		if _, ok := keys[e.Key]; !ok {
			t.Fatalf("error %v names key %q that is not in the input", e, e.Key)
		}
		if e.Message == "" {
			t.Fatalf("error for %q has no message", e.Key)
		}
	}
	if len(errs) == 0 && len(spec.Routes) == 0 {
		t.Fatalf("no error and no route for %q", keys)
	}
	names := map[string]bool{}
	for _, r := range spec.Routes {
		if names[r.Name] {
			t.Fatalf("route %q returned twice", r.Name)
		}
		names[r.Name] = true
		if r.Name != "" && !hasKeyPrefix(keys, "routes."+r.Name+".") {
			t.Fatalf("route %q has no routes.%s.* key in the input", r.Name, r.Name)
		}
		if p, err := ParsePath(r.Path); err != nil || p != r.Path || !strings.HasPrefix(r.Path, "/") {
			t.Fatalf("route %q: path %q is not a canonical path prefix", r.Name, r.Path)
		}
		if r.Weight < 1 || r.Weight > 1000 || r.Port < 0 || r.Port > 65535 {
			t.Fatalf("route %q: weight %d or port %d out of range", r.Name, r.Weight, r.Port)
		}
		for _, h := range r.Hosts {
			if h != strings.ToLower(h) {
				t.Fatalf("route %q: host %q is not lowercase", r.Name, h)
			}
			if !inSomeValue(keys, h) {
				t.Fatalf("route %q: host %q is not written in the input", r.Name, h)
			}
		}
		if again, err := ParseHosts(strings.Join(r.Hosts, ",")); err != nil || !slices.Equal(again, r.Hosts) {
			t.Fatalf("route %q: hosts %q do not parse to themselves: %q, %v", r.Name, r.Hosts, again, err)
		}
		if h := r.Options.Health.Host; h != "" {
			if again, err := ParseHosts(h); err != nil || len(again) != 1 || again[0] != h || h[0] == '*' {
				t.Fatalf("route %q: health host %q is not one plain host name", r.Name, h)
			}
		}
		if hp := r.Options.Health.Path; hp != "" && !strings.HasPrefix(hp, "/") {
			t.Fatalf("route %q: health path %q does not start with /", r.Name, hp)
		}
		if _, err := ParseBalance(r.Options.Balance.String()); err != nil {
			t.Fatalf("route %q: balance %v does not parse back: %v", r.Name, r.Options.Balance, err)
		}
	}
}

// inSomeValue reports whether s is part of a value of keys, ignoring the
// case of ASCII letters only.
func inSomeValue(keys map[string]string, s string) bool {
	lower := func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	for _, v := range keys {
		if strings.Contains(strings.Map(lower, v), s) {
			return true
		}
	}
	return false
}

func hasKeyPrefix(keys map[string]string, prefix string) bool {
	for k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
