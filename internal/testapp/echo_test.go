package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestEcho(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{healthy: true}, &now)
	req := httptest.NewRequest(http.MethodPost, "http://api.example.com/a%2Fb/c?x=1", strings.NewReader("hello"))
	req.Header.Add("X-Forwarded-For", "10.0.0.1")
	req.Header.Add("X-Forwarded-For", "10.0.0.2")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "api.example.com")
	req.Header.Set("X-Request-Id", "r1")
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)

	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	if want := "a v1 POST /a%2Fb/c\n"; rec.Body.String() != want {
		t.Errorf("body = %q, want %q", rec.Body, want)
	}
	wantHeaders := map[string]string{
		"X-Backend":                "a",
		"X-Version":                "v1",
		"X-Body-Bytes":             "5",
		"X-Seen-X-Forwarded-For":   "10.0.0.1, 10.0.0.2",
		"X-Seen-X-Forwarded-Proto": "https",
		"X-Seen-X-Forwarded-Host":  "api.example.com",
		"X-Seen-X-Request-Id":      "r1",
		"X-Seen-Host":              "api.example.com",
		"X-Seen-Protocol":          "HTTP/1.1",
	}
	for k, want := range wantHeaders {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestEchoOmitsUnsentHeaders(t *testing.T) {
	now := time.Unix(1000, 0)
	rec := do(testApp(t, config{}, &now), http.MethodGet, "/")
	for _, k := range seenHeaders {
		if v, ok := rec.Header()["X-Seen-"+k]; ok {
			t.Errorf("X-Seen-%s = %q for a request without %s", k, v, k)
		}
	}
	if got := rec.Header().Get("X-Body-Bytes"); got != "0" {
		t.Errorf("X-Body-Bytes = %q, want 0", got)
	}
}

func TestParseEchoOptions(t *testing.T) {
	tests := []struct {
		query   string
		want    echoOptions
		wantErr bool
	}{
		{"", echoOptions{status: 200, size: -1}, false},
		{"sleep=250ms&status=503", echoOptions{sleep: 250 * time.Millisecond, status: 503, size: -1}, false},
		{"sleep=2h", echoOptions{sleep: MaxSleep, status: 200, size: -1}, false},
		{"size=0", echoOptions{status: 200, size: 0}, false},
		{"size=1000000000", echoOptions{status: 200, size: MaxSize}, false},
		{"stream=5", echoOptions{status: 200, size: -1, stream: 5}, false},
		{"stream=99999999", echoOptions{status: 200, size: -1, stream: MaxStream}, false},
		{"sleep=soon", echoOptions{}, true},
		{"sleep=-1s", echoOptions{}, true},
		{"status=99", echoOptions{}, true},
		{"status=600", echoOptions{}, true},
		{"status=ok", echoOptions{}, true},
		{"size=-1", echoOptions{}, true},
		{"size=big", echoOptions{}, true},
		{"stream=-2", echoOptions{}, true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := parseEchoOptions(q)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseEchoOptions(%q) error = %v, want error %t", tt.query, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("parseEchoOptions(%q) = %+v, want %+v", tt.query, got, tt.want)
		}
	}
}

func TestEchoResponses(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{}, &now)
	tests := []struct {
		target   string
		wantCode int
		wantBody string
	}{
		{"/s?status=418", 418, "a v1 GET /s\n"},
		{"/s?size=5", 200, "xxxxx"},
		{"/s?size=0", 200, ""},
		{"/s?size=3&status=404", 404, "xxx"},
		{"/s?size=3&status=204", 204, ""},
		{"/s?sleep=1ms", 200, "a v1 GET /s\n"},
		{"/s?status=bad", 400, "query status=\"bad\": want a status code from 200 to 599\n"},
	}
	for _, tt := range tests {
		rec := do(a, http.MethodGet, tt.target)
		if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
			t.Errorf("GET %s = %d %q, want %d %q", tt.target, rec.Code, rec.Body, tt.wantCode, tt.wantBody)
		}
	}
}

func TestEchoLargeSize(t *testing.T) {
	srv := httptest.NewServer(&app{name: "a", version: "v1", now: time.Now})
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/?size=1048577")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 1048577 || resp.ContentLength != 1048577 {
		t.Errorf("read %d bytes (Content-Length %d), err %v; want 1048577", n, resp.ContentLength, err)
	}
}

func TestEchoSleepHonoursCancel(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{}, &now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/?sleep=60s", nil)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req) // returns at once: the client is gone
	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q to a client that is gone", rec.Body)
	}
}

func TestEchoStreamFlushesEachChunk(t *testing.T) {
	now := time.Unix(1000, 0)
	a := testApp(t, config{}, &now)
	a.streamInterval = 0
	rec := do(a, http.MethodGet, "/?stream=3&status=202")
	want := "a v1 chunk 1\na v1 chunk 2\na v1 chunk 3\n"
	if rec.Code != 202 || rec.Body.String() != want || !rec.Flushed {
		t.Errorf("GET /?stream=3 = %d %q flushed %t, want 202 %q flushed", rec.Code, rec.Body, rec.Flushed, want)
	}
}

// TestEchoStreamOverTheWire reads the first chunk while the handler waits an
// hour before the second: only a flushed chunk can arrive.
func TestEchoStreamOverTheWire(t *testing.T) {
	a := &app{name: "a", version: "v1", now: time.Now, streamInterval: time.Hour}
	srv := httptest.NewServer(a)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?stream=2", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "a v1 chunk 1\n" {
		t.Errorf("first chunk = %q, %v", line, err)
	}
}
