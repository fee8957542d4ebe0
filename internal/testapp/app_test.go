package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testApp returns an app named "a" at version "v1" whose clock reads *now.
func testApp(t *testing.T, cfg config, now *time.Time) *app {
	t.Helper()
	cfg.name, cfg.version = "a", "v1"
	return newApp(cfg, func() time.Time { return *now })
}

// do serves one request to h and returns the recorded response.
func do(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestHealth(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		name       string
		healthy    bool
		readyAfter time.Duration
		elapsed    time.Duration
		wantCode   int
		wantBody   string
	}{
		{"healthy", true, 0, 0, http.StatusOK, "ok"},
		{"started unhealthy", false, 0, time.Hour, http.StatusServiceUnavailable, "unhealthy"},
		{"not ready yet", true, 2 * time.Second, time.Second, http.StatusServiceUnavailable, "starting"},
		{"ready at the instant", true, 2 * time.Second, 2 * time.Second, http.StatusOK, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			a := testApp(t, config{healthy: tt.healthy, readyAfter: tt.readyAfter}, &now)
			now = start.Add(tt.elapsed)
			rec := do(a, http.MethodGet, "/healthz")
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("GET /healthz = %d %q, want %d %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			if got := rec.Header().Get("X-Backend"); got != "a" {
				t.Errorf("X-Backend = %q, want a", got)
			}
		})
	}
}

func TestControlHealthy(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	steps := []struct {
		method, target string
		wantCode       int
		wantHealth     int
	}{
		{http.MethodPost, "/control/healthy?v=false", http.StatusOK, http.StatusServiceUnavailable},
		{http.MethodGet, "/control/healthy?v=true", http.StatusOK, http.StatusOK},
		{http.MethodPut, "/control/healthy?v=false", http.StatusMethodNotAllowed, http.StatusOK},
		{http.MethodGet, "/control/healthy?v=perhaps", http.StatusBadRequest, http.StatusOK},
		{http.MethodGet, "/control/healthy", http.StatusBadRequest, http.StatusOK},
	}
	for _, s := range steps {
		if rec := do(a, s.method, s.target); rec.Code != s.wantCode {
			t.Errorf("%s %s = %d, want %d", s.method, s.target, rec.Code, s.wantCode)
		}
		if rec := do(a, http.MethodGet, "/healthz"); rec.Code != s.wantHealth {
			t.Errorf("after %s %s: GET /healthz = %d, want %d", s.method, s.target, rec.Code, s.wantHealth)
		}
	}
}

func TestControlFail(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	steps := []struct {
		target   string
		wantEcho int
	}{
		{"/control/fail?v=true", http.StatusInternalServerError},
		{"/control/fail?v=false", 201},
	}
	for _, s := range steps {
		if rec := do(a, http.MethodPost, s.target); rec.Code != http.StatusOK {
			t.Fatalf("POST %s = %d", s.target, rec.Code)
		}
		rec := do(a, http.MethodGet, "/any?status=201")
		if rec.Code != s.wantEcho {
			t.Errorf("after %s: GET /any = %d, want %d", s.target, rec.Code, s.wantEcho)
		}
		if got := rec.Header().Get("X-Backend"); got != "a" {
			t.Errorf("after %s: X-Backend = %q, want a", s.target, got)
		}
	}
	if rec := do(a, http.MethodGet, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("fail mode changed /healthz: %d", rec.Code)
	}
}

func TestStats(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	for _, target := range []string{"/", "/x", "/healthz", "/control/fail?v=false", "/y?status=404", "/stats"} {
		do(a, http.MethodGet, target)
	}
	rec := do(a, http.MethodGet, "/stats")
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	want := map[string]any{"name": "a", "version": "v1", "requests": float64(3)}
	if len(got) != len(want) || got["name"] != want["name"] || got["version"] != want["version"] || got["requests"] != want["requests"] {
		t.Errorf("GET /stats = %v, want %v", got, want)
	}
}
