package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// rawServer serves connections with handle until the test ends.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { handle(c) })
		}
	})
	return ln.Addr().String()
}

func TestProbeErrors(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	reset := rawServer(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		_, _ = c.Read(buf) // the request
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	eof := rawServer(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		_, _ = c.Read(buf)
		c.Close()
	})
	silent := rawServer(t, func(c net.Conn) { c.Close() })
	refused := closedAddr(t)
	tests := []struct {
		name string
		addr string
		cfg  Config
		want string
	}{
		{"http refused", refused, Config{Mode: HTTP, Timeout: wait}, "connect: connection refused"},
		{"tcp refused", refused, Config{Mode: TCP, Timeout: wait}, "connect: connection refused"},
		{"timeout", addr(hang), Config{Mode: HTTP, Timeout: 50 * time.Millisecond}, "timeout after 50ms"},
		{"reset", reset, Config{Mode: HTTP, Timeout: wait}, "read: connection reset by peer"},
		{"closed without response", eof, Config{Mode: HTTP, Timeout: wait}, "read: connection closed before a response"},
		{"tcp accepts and closes", silent, Config{Mode: TCP, Timeout: wait}, ""},
	}
	m := NewMonitor(MonitorConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.newProber(tt.addr, tt.cfg.WithDefaults()).probe(context.Background())
			if got := errText(r.Err); got != tt.want || r.OK != (tt.want == "") {
				t.Errorf("probe = %v %q, want %q", r.OK, got, tt.want)
			}
		})
	}
}

func TestProbeTimeoutUnwraps(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	h := start(t, MonitorConfig{})
	rc := h.recorder()
	h.m.Set([]Target{{ID: "a", Address: addr(hang), Config: Config{Mode: HTTP, Interval: time.Hour, Timeout: 20 * time.Millisecond}, Observer: rc}})
	e := rc.next(t)
	if e.r.OK || !errors.Is(e.r.Err, context.DeadlineExceeded) || e.r.Err.Error() != "timeout after 20ms" {
		t.Errorf("result = %v %v, want a timeout that unwraps to context.DeadlineExceeded", e.r.OK, e.r.Err)
	}
}

func TestProbeHTTPStatus(t *testing.T) {
	var other atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			other.Add(1)
			return
		}
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		if code >= 300 && code < 400 {
			http.Redirect(w, r, "/elsewhere", code)
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		code     int
		min, max int
		want     string
	}{
		{200, 0, 0, ""},
		{204, 0, 0, ""},
		{301, 0, 0, ""},
		{302, 0, 0, ""},
		{399, 0, 0, ""},
		{400, 0, 0, "status 400 (want 200-399)"},
		{500, 0, 0, "status 500 (want 200-399)"},
		{503, 0, 0, "status 503 (want 200-399)"},
		{302, 200, 299, "status 302 (want 200-299)"},
		{200, 200, 200, ""},
		{201, 200, 200, "status 201 (want 200)"},
		{503, 500, 503, ""},
		{504, 500, 503, "status 504 (want 500-503)"},
	}
	m := NewMonitor(MonitorConfig{})
	for _, tt := range tests {
		cfg := Config{Mode: HTTP, Path: "/status?code=" + strconv.Itoa(tt.code), StatusMin: tt.min, StatusMax: tt.max}
		r := m.newProber(srv.Listener.Addr().String(), cfg.WithDefaults()).probe(context.Background())
		if got := errText(r.Err); got != tt.want || r.OK != (tt.want == "") {
			t.Errorf("status %d in %d-%d: %v %q, want %q", tt.code, tt.min, tt.max, r.OK, got, tt.want)
		}
	}
	if n := other.Load(); n != 0 {
		t.Errorf("a redirect was followed %d times", n)
	}
}

func TestProbeHTTPRequest(t *testing.T) {
	type seen struct {
		host, ua, path string
		close          bool
	}
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.UserAgent(), r.URL.RequestURI(), r.Close}
		// A body far larger than what the probe reads.
		_, _ = io.Copy(w, io.LimitReader(zeros{}, 8<<20))
	}))
	t.Cleanup(srv.Close)
	m := NewMonitor(MonitorConfig{})
	tests := []struct {
		cfg  Config
		want seen
	}{
		{Config{Mode: HTTP, Host: "api.example.com", Path: "/healthz?deep=1"}, seen{"api.example.com", "cutover-health", "/healthz?deep=1", true}},
		{Config{Mode: HTTP}, seen{srv.Listener.Addr().String(), "cutover-health", "/", true}},
		{Config{Mode: HTTP, Path: "up"}, seen{srv.Listener.Addr().String(), "cutover-health", "/up", true}},
	}
	for _, tt := range tests {
		r := m.newProber(srv.Listener.Addr().String(), tt.cfg.WithDefaults()).probe(context.Background())
		if !r.OK {
			t.Errorf("%+v: probe failed: %v", tt.cfg, r.Err)
		}
		if s := <-got; s != tt.want {
			t.Errorf("%+v: server saw %+v, want %+v", tt.cfg, s, tt.want)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// An HTTPS probe verifies the backend's certificate against RootCAs.
func TestProbeHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	cfg := Config{Mode: HTTP, Path: "/healthz", HTTPS: true}.WithDefaults()
	trusted := NewMonitor(MonitorConfig{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if r := trusted.newProber(srv.Listener.Addr().String(), cfg).probe(context.Background()); !r.OK {
		t.Errorf("probe with the server's CA: %v", r.Err)
	}
	stranger := NewMonitor(MonitorConfig{})
	if r := stranger.newProber(srv.Listener.Addr().String(), cfg).probe(context.Background()); r.OK || !strings.Contains(r.Err.Error(), "certificate") {
		t.Errorf("probe without the server's CA: %+v, want a certificate error", r)
	}
	plain := Config{Mode: HTTP, Path: "/healthz"}.WithDefaults()
	if r := trusted.newProber(srv.Listener.Addr().String(), plain).probe(context.Background()); r.OK {
		t.Error("a plain HTTP probe of a TLS server passed")
	}
}
