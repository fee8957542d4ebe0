package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dataApp returns an app whose /data file is under a fresh directory.
func dataApp(t *testing.T, dir string) *app {
	t.Helper()
	now := time.Unix(1000, 0)
	return testApp(t, config{healthy: true, dataDir: dir}, &now)
}

func TestData(t *testing.T) {
	a := dataApp(t, t.TempDir())
	steps := []struct {
		method, target string
		wantCode       int
		wantBody       string
	}{
		{http.MethodGet, "/data", 200, ""},
		{http.MethodGet, "/data?write=one", 200, "one\n"},
		{http.MethodPost, "/data?write=two%20words", 200, "one\ntwo words\n"},
		{http.MethodGet, "/data", 200, "one\ntwo words\n"},
		{http.MethodGet, "/data?write=", 400, ""},
		{http.MethodGet, "/data?write=a%0Ab", 400, ""},
		{http.MethodGet, "/data?write=" + strings.Repeat("x", MaxDataWrite+1), 400, ""},
		{http.MethodPut, "/data?write=three", 405, ""},
		{http.MethodGet, "/data", 200, "one\ntwo words\n"},
	}
	for _, s := range steps {
		rec := do(a, s.method, s.target)
		if rec.Code != s.wantCode {
			t.Errorf("%s %.40s = %d %q, want %d", s.method, s.target, rec.Code, rec.Body, s.wantCode)
			continue
		}
		if s.wantCode == 200 && rec.Body.String() != s.wantBody {
			t.Errorf("%s %s body = %q, want %q", s.method, s.target, rec.Body, s.wantBody)
		}
		if got := rec.Header().Get("X-Version"); got != "v1" {
			t.Errorf("%s %s: X-Version = %q, want v1", s.method, s.target, got)
		}
	}
	if rec := do(a, http.MethodGet, "/stats"); !strings.Contains(rec.Body.String(), `"requests":0`) {
		t.Errorf("/data was counted as an echo request: /stats = %s", rec.Body)
	}
}

// TestDataOutlivesTheApp shows what the e2e tests use it for: a second
// app on the same directory (a new container on the same volume) reads
// what the first one wrote.
func TestDataOutlivesTheApp(t *testing.T) {
	dir := t.TempDir()
	do(dataApp(t, dir), http.MethodPost, "/data?write=by-v1")
	rec := do(dataApp(t, dir), http.MethodGet, "/data?write=by-v2")
	if rec.Code != 200 || rec.Body.String() != "by-v1\nby-v2\n" {
		t.Errorf("second app: /data = %d %q, want 200 %q", rec.Code, rec.Body, "by-v1\nby-v2\n")
	}
	b, err := os.ReadFile(filepath.Join(dir, dataFile))
	if err != nil || string(b) != "by-v1\nby-v2\n" {
		t.Errorf("%s = %q, %v", dataFile, b, err)
	}
}

func TestDataConcurrentWritesKeepLines(t *testing.T) {
	a := dataApp(t, t.TempDir())
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { do(a, http.MethodPost, "/data?write="+strings.Repeat("z", 100)) })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(do(a, http.MethodGet, "/data").Body.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l != strings.Repeat("z", 100) {
			t.Fatalf("line %d = %q: writes interleaved", i+1, l)
		}
	}
}

func TestDataOff(t *testing.T) {
	a := dataApp(t, "")
	if rec := do(a, http.MethodGet, "/data?write=x"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "-data-dir") {
		t.Errorf("/data without -data-dir = %d %q, want 404 naming -data-dir", rec.Code, rec.Body)
	}
}

func TestDataUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, dataFile), 0o755); err != nil {
		t.Fatal(err)
	}
	a := dataApp(t, dir)
	if rec := do(a, http.MethodGet, "/data"); rec.Code != http.StatusInternalServerError {
		t.Errorf("/data on a directory = %d %q, want 500", rec.Code, rec.Body)
	}
	if rec := do(a, http.MethodGet, "/data?write=x"); rec.Code != http.StatusInternalServerError {
		t.Errorf("/data?write on a directory = %d %q, want 500", rec.Code, rec.Body)
	}
}
