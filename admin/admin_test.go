package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestReadyzFollowsReady(t *testing.T) {
	ready := false
	h := New(Config{Ready: func() bool { return ready }})
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("before ready: %d %q, want 503", code, body)
	}
	ready = true
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("after ready: %d, want 200", code)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("healthz: %d, want 200", code)
	}
}

func TestServicesAPIAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	h := New(Config{
		Gatherer: reg,
		Status: func() Status {
			return Status{Services: []Service{{Name: "web", Backends: []Backend{{Name: "a", State: "up", Available: true}}}},
				Problems: []Problem{{Provider: "file", Message: "bad"}}}
		},
	})
	code, body := get(t, h, "/api/v1/services")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("api: %d %v %q", code, err, body)
	}
	if len(st.Services) != 1 || st.Services[0].Backends[0].State != "up" || st.Problems[0].Message != "bad" {
		t.Errorf("api document: %+v", st)
	}
	if code, body := get(t, h, "/metrics"); code != 200 || !strings.Contains(body, "cutover_test_total 3") {
		t.Errorf("metrics: %d %q", code, body)
	}
	if code, _ := get(t, New(Config{}), "/metrics"); code != 404 {
		t.Errorf("metrics without a gatherer: %d, want 404", code)
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	if code, _ := get(t, New(Config{}), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("without Pprof: /debug/pprof/ answered %d, want 404", code)
	}
	h := New(Config{Pprof: true})
	if code, body := get(t, h, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("with Pprof: /debug/pprof/ answered %d %.80q, want the index", code, body)
	}
	if code, body := get(t, h, "/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("with Pprof: heap profile answered %d %.80q", code, body)
	}
}
