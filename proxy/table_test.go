package proxy

import (
	"fmt"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// routingTable builds a table of services named after the route they
// serve, with no endpoints: enough for Lookup.
func routingTable(t testing.TB, routes ...discovery.Route) *Table {
	t.Helper()
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var s discovery.Snapshot
	for _, r := range routes {
		name := r.Host + r.Path
		if r.Host == "" {
			name = "any" + r.Path
		}
		s.Services = append(s.Services, discovery.Service{Name: name, Routes: []discovery.Route{r}})
	}
	p.Update(s)
	return p.Table()
}

func TestLookup(t *testing.T) {
	tab := routingTable(t,
		discovery.Route{Host: "example.com", Path: "/"},
		discovery.Route{Host: "example.com", Path: "/api"},
		discovery.Route{Host: "example.com", Path: "/api/v2"},
		discovery.Route{Host: "only.example.com", Path: "/admin"},
		discovery.Route{Host: "*.example.com", Path: "/"},
		discovery.Route{Host: "*.b.example.com", Path: "/"},
		discovery.Route{Host: "*.c.example.com", Path: "/c"},
		discovery.Route{Host: "127.0.0.1", Path: "/"},
		discovery.Route{Host: "[::1]", Path: "/"},
		discovery.Route{Host: "", Path: "/"},
		discovery.Route{Host: "", Path: "/static"},
	)
	tests := []struct {
		host, path, want string
	}{
		// Exact before wildcard before catch-all.
		{"example.com", "/", "example.com/"},
		{"x.example.com", "/", "*.example.com/"},
		{"other.org", "/", "any/"},
		// The wildcard matches names below the domain, not the domain.
		{"example.org", "/", "any/"},
		// Nested wildcards: the longest suffix wins.
		{"a.b.example.com", "/", "*.b.example.com/"},
		{"x.a.b.example.com", "/", "*.b.example.com/"},
		{"b.example.com", "/", "*.example.com/"},
		// Case- and port-insensitive hosts, trailing dot.
		{"EXAMPLE.com", "/", "example.com/"},
		{"Example.COM:8080", "/api", "example.com/api"},
		{"example.com.", "/", "example.com/"},
		{"example.com.:443", "/", "example.com/"},
		{"X.Example.Com", "/", "*.example.com/"},
		{"127.0.0.1:8080", "/", "127.0.0.1/"},
		{"[::1]:8080", "/", "[::1]/"},
		{"[::1]", "/", "[::1]/"},
		{"[::2]:80", "/", "any/"},
		{"", "/", "any/"},
		// Longest path prefix, at segment boundaries.
		{"example.com", "/api", "example.com/api"},
		{"example.com", "/api/", "example.com/api"},
		{"example.com", "/api/users", "example.com/api"},
		{"example.com", "/api/v2", "example.com/api/v2"},
		{"example.com", "/api/v2/x", "example.com/api/v2"},
		{"example.com", "/api/v20", "example.com/api"},
		{"example.com", "/apix", "example.com/"},
		{"example.com", "/ap", "example.com/"},
		// Fall-through: a host whose paths do not match gives way to the
		// wildcard, then the catch-all.
		{"only.example.com", "/admin/x", "only.example.com/admin"},
		{"only.example.com", "/public", "*.example.com/"},
		{"x.c.example.com", "/c/d", "*.c.example.com/c"},
		{"x.c.example.com", "/d", "*.example.com/"},
		{"other.org", "/static/app.js", "any/static"},
		{"other.org", "/staticx", "any/"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			svc := tab.Lookup(tt.host, tt.path)
			if svc == nil {
				t.Fatalf("Lookup(%q, %q) = nil, want %q", tt.host, tt.path, tt.want)
			}
			if svc.Name() != tt.want {
				t.Errorf("Lookup(%q, %q) = %q, want %q", tt.host, tt.path, svc.Name(), tt.want)
			}
		})
	}
}

func TestLookupNoMatch(t *testing.T) {
	tab := routingTable(t,
		discovery.Route{Host: "example.com", Path: "/api"},
		discovery.Route{Host: "*.example.com", Path: "/api"},
	)
	for _, c := range []struct{ host, path string }{
		{"example.com", "/"},
		{"example.com", "/apix"},
		{"x.example.com", "/web"},
		{"example.org", "/api"},
		{"", "/api"},
	} {
		if svc := tab.Lookup(c.host, c.path); svc != nil {
			t.Errorf("Lookup(%q, %q) = %q, want nil", c.host, c.path, svc.Name())
		}
	}
	if svc := emptyTable().Lookup("example.com", "/"); svc != nil {
		t.Errorf("empty table: Lookup = %q, want nil", svc.Name())
	}
}

func TestLookupLongHost(t *testing.T) {
	tab := routingTable(t, discovery.Route{Path: "/"})
	long := make([]byte, maxHost+10)
	for i := range long {
		long[i] = 'A'
	}
	if svc := tab.Lookup(string(long), "/"); svc == nil || svc.Name() != "any/" {
		t.Errorf("host of %d characters: want the catch-all", len(long))
	}
}

func TestLookupAllocs(t *testing.T) {
	tab := routingTable(t,
		discovery.Route{Host: "example.com", Path: "/api"},
		discovery.Route{Host: "*.example.com", Path: "/"},
		discovery.Route{Path: "/"},
	)
	for _, host := range []string{"example.com", "API.Example.COM:8443", "Example.com.", "[::1]:80", "nowhere.test"} {
		allocs := testing.AllocsPerRun(100, func() {
			if tab.Lookup(host, "/api/users") == nil {
				t.Fatal("no match")
			}
		})
		if allocs != 0 {
			t.Errorf("Lookup(%q): %v allocations, want 0", host, allocs)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	var routes []discovery.Route
	for i := range 1000 {
		routes = append(routes,
			discovery.Route{Host: fmt.Sprintf("host%d.example.com", i), Path: "/"},
			discovery.Route{Host: fmt.Sprintf("host%d.example.com", i), Path: "/api"})
	}
	routes = append(routes, discovery.Route{Host: "*.example.com", Path: "/"})
	tab := routingTable(b, routes...)
	hosts := []string{"host1.example.com", "Host500.Example.com:8080", "unknown.example.com", "host999.example.com."}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if tab.Lookup(hosts[i%len(hosts)], "/api/users/42") == nil {
				b.Fatal("no match")
			}
			i++
		}
	})
}
