package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDeploys records requests and answers with two steps and a result.
type fakeDeploys struct {
	mu        sync.Mutex
	requests  []DeployRequest
	triggered []DeployRequest
	busy      bool
}

func (f *fakeDeploys) Deploy(_ context.Context, r DeployRequest, progress func(any)) (any, error) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	if f.busy {
		return nil, fmt.Errorf("service %s: %w", r.Service, ErrBusy)
	}
	progress(map[string]string{"phase": "create"})
	progress(map[string]string{"phase": "done"})
	return map[string]string{"outcome": "succeeded", "image": r.Image}, nil
}

func (f *fakeDeploys) Rollback(ctx context.Context, r DeployRequest, progress func(any)) (any, error) {
	return f.Deploy(ctx, r, progress)
}

func (f *fakeDeploys) History(context.Context, string) (any, error) { return []string{}, nil }

func (f *fakeDeploys) Trigger(r DeployRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggered = append(f.triggered, r)
}

func post(t *testing.T, h http.Handler, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestDeployEndpointNeedsAToken(t *testing.T) {
	f := &fakeDeploys{}
	off := New(Config{Deploys: f})
	if rec := post(t, off, "/api/v1/services/web/deploy", "x", `{"image":"app:v2"}`); rec.Code != 403 || !strings.Contains(rec.Body.String(), "--admin-token") {
		t.Errorf("without a configured token: %d %q, want 403 saying how to turn it on", rec.Code, rec.Body)
	}
	on := New(Config{Deploys: f, Token: "s3cret"})
	for _, tok := range []string{"", "wrong"} {
		if rec := post(t, on, "/api/v1/services/web/deploy", tok, `{"image":"app:v2"}`); rec.Code != 401 {
			t.Errorf("token %q: %d, want 401", tok, rec.Code)
		}
	}
	if len(f.requests) != 0 {
		t.Errorf("a deploy ran without the right token: %v", f.requests)
	}
}

func TestDeployEndpointStreamsSteps(t *testing.T) {
	f := &fakeDeploys{}
	h := New(Config{Deploys: f, Token: "s3cret"})
	rec := post(t, h, "/api/v1/services/web/deploy", "s3cret", `{"image":"app:v2","strategy":"blue-green","drain_timeout":"5s"}`)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var events []Event
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	if len(events) != 3 || events[0].Step == nil || events[2].Result == nil || events[2].Error != "" {
		t.Fatalf("events %+v, want two steps and a result", events)
	}
	r := f.requests[0]
	if r.Service != "web" || r.Image != "app:v2" || r.Strategy != "blue-green" || time.Duration(r.DrainTimeout) != 5*time.Second || r.Trigger != "cli" {
		t.Errorf("request %+v", r)
	}
}

func TestDeployEndpointRefusesBadRequests(t *testing.T) {
	f := &fakeDeploys{}
	h := New(Config{Deploys: f, Token: "t"})
	for _, body := range []string{`{}`, `{"image":"a","colour":"blue"}`, `{"image":"a","drain_timeout":"soon"}`, `not json`} {
		if rec := post(t, h, "/api/v1/services/web/deploy", "t", body); rec.Code != 400 {
			t.Errorf("body %s: %d %q, want 400", body, rec.Code, rec.Body)
		}
	}
	f.busy = true
	if rec := post(t, h, "/api/v1/services/web/deploy", "t", `{"image":"a"}`); rec.Code != 409 || !strings.Contains(rec.Body.String(), "already running") {
		t.Errorf("busy: %d %q, want 409", rec.Code, rec.Body)
	}
}

func TestWebhook(t *testing.T) {
	f := &fakeDeploys{}
	h := New(Config{Deploys: f, WebhookTokens: []WebhookToken{{Service: "web", Token: "w1"}, {Token: "all"}}})
	payload := `{"push_data":{"tag":"v3"},"repository":{"repo_name":"org/app"}}`
	cases := []struct {
		path string
		want int
	}{
		{"/hooks/deploy/web?token=nope", 401},
		{"/hooks/deploy/web", 401},
		{"/hooks/deploy/api?token=w1", 401}, // web's token does not open api
		{"/hooks/deploy/web?token=w1", 202},
		{"/hooks/deploy/api?token=all", 202},
	}
	for _, c := range cases {
		if rec := post(t, h, c.path, "", payload); rec.Code != c.want {
			t.Errorf("%s: %d %q, want %d", c.path, rec.Code, rec.Body, c.want)
		}
	}
	if len(f.triggered) != 2 || f.triggered[0].Image != "org/app:v3" || f.triggered[0].Service != "web" || f.triggered[0].Trigger != "webhook" {
		t.Errorf("triggered %+v", f.triggered)
	}
	if rec := post(t, New(Config{Deploys: f}), "/hooks/deploy/web?token=w1", "", payload); rec.Code != 403 {
		t.Errorf("webhooks without tokens: %d, want 403", rec.Code)
	}
}
