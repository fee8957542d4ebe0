package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRoundRobinSplitsEvenly(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: rr.test
    backends: [%s, %s, %s]
`, a.addr(), b.addr(), c.addr()))
	l := runLoad(context.Background(), in, "rr.test", "/", 4, 300)
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed: %v", l.failed.Load(), l.failures)
	}
	for _, name := range []string{"a", "b", "c"} {
		within(t, name, l.count(name), 100, 0.1)
	}
}

func TestWeightedSplit(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: weighted.test
    backends: [%s, {address: %s, weight: 3}]
`, a.addr(), b.addr()))
	l := runLoad(context.Background(), in, "weighted.test", "/", 4, 400)
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed: %v", l.failed.Load(), l.failures)
	}
	within(t, "a", l.count("a"), 100, 0.1)
	within(t, "b", l.count("b"), 300, 0.1)
}

// within fails unless got is within tolerance (a fraction) of want.
func within(t *testing.T, what string, got, want int64, tolerance float64) {
	t.Helper()
	if math.Abs(float64(got-want)) > tolerance*float64(want) {
		t.Errorf("%s got %d requests, want %d ± %.0f%%", what, got, want, tolerance*100)
	}
}

func TestHostWildcardAndPathRouting(t *testing.T) {
	names := []string{"exact", "wild", "deeper", "api", "catchall", "catchapi"}
	bs := map[string]*backend{}
	for _, n := range names {
		bs[n] = newBackend(t, n)
	}
	in := start(t, fmt.Sprintf(`
services:
  exact:
    host: www.example.test
    backends: [%s]
  wild:
    host: "*.example.test"
    backends: [%s]
  deeper:
    host: "*.eu.example.test"
    backends: [%s]
  api:
    host: www.example.test
    path: /api
    backends: [%s]
  catchall:
    backends: [%s]
  catchapi:
    path: /api/v2
    backends: [%s]
`, bs["exact"].addr(), bs["wild"].addr(), bs["deeper"].addr(), bs["api"].addr(), bs["catchall"].addr(), bs["catchapi"].addr()))
	cases := []struct{ host, path, want string }{
		{"www.example.test", "/", "exact"},
		{"WWW.Example.TEST:8080", "/x", "exact"},
		{"www.example.test", "/api", "api"},
		{"www.example.test", "/api/users", "api"},
		{"www.example.test", "/apix", "exact"},
		{"shop.example.test", "/api", "wild"},
		{"a.b.example.test", "/", "wild"},
		{"paris.eu.example.test", "/", "deeper"},
		{"example.test", "/", "catchall"},
		{"other.test", "/api/v2/x", "catchapi"},
		{"other.test", "/api/v3", "catchall"},
		{"127.0.0.1", "/", "catchall"},
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range cases {
		code, body, err := in.get(c, tc.host, tc.path)
		if err != nil || code != 200 || !strings.HasPrefix(body, tc.want+" ") {
			t.Errorf("Host %s path %s: got %d %q %v, want 200 from %s", tc.host, tc.path, code, body, err, tc.want)
		}
	}
}

func TestNoRouteIs404AndNoBackendIs503(t *testing.T) {
	in := start(t, fmt.Sprintf(`
services:
  empty:
    host: empty.test
  down:
    host: down.test
    backends: [%s]
`, freeAddr(t)))
	c := &http.Client{Timeout: 5 * time.Second}
	code, body, err := in.get(c, "nowhere.test", "/x")
	if err != nil || code != 404 || !strings.Contains(body, "no route") || !strings.Contains(body, "nowhere.test") {
		t.Errorf("unknown host: got %d %q %v, want 404 naming the host", code, body, err)
	}
	code, body, err = in.get(c, "empty.test", "/")
	if err != nil || code != 503 || !strings.Contains(body, `"empty"`) {
		t.Errorf("service without backends: got %d %q %v, want 503 naming the service", code, body, err)
	}
	code, body, err = in.get(c, "down.test", "/")
	if err != nil || code != 503 || !strings.Contains(body, "no backend could be reached") {
		t.Errorf("service whose only backend refuses: got %d %q %v, want 503: no backend could be reached", code, body, err)
	}
}
