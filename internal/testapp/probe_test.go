package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/down", http.StatusFound)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		url      string
		wantCode int
	}{
		{srv.URL + "/ok", 0},
		{srv.URL + "/moved", 0}, // 3xx is healthy; the redirect is not followed
		{srv.URL + "/down", 1},
		{srv.URL + "/missing", 1},
		{closedURL + "/ok", 1},
		{"::not a url", 1},
	}
	for _, tt := range tests {
		if got := probeExit(tt.url, io.Discard); got != tt.wantCode {
			t.Errorf("probeExit(%q) = %d, want %d", tt.url, got, tt.wantCode)
		}
	}
}

func TestRunProbeMode(t *testing.T) {
	a := newApp(config{name: "a", version: "v1", healthy: true}, time.Now)
	srv := httptest.NewServer(a)
	defer srv.Close()
	getenv := func(string) string { return "" }
	if got := run([]string{"-probe", srv.URL + "/healthz"}, getenv, io.Discard); got != 0 {
		t.Errorf("run -probe healthy = %d, want 0", got)
	}
	a.healthy.Store(false)
	if got := run([]string{"-probe=" + srv.URL + "/healthz"}, getenv, io.Discard); got != 1 {
		t.Errorf("run -probe unhealthy = %d, want 1", got)
	}
}
