package backend

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestBodySize(t *testing.T) {
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", DefaultBody},
		{"/b/0", 0},
		{"/b/65536", 65536},
		{"/b/-1", DefaultBody},
		{"/b/x", DefaultBody},
		{"/b/999999999", MaxBody},
		{"/other/5", DefaultBody},
	} {
		if got := BodySize(tc.path); got != tc.want {
			t.Errorf("BodySize(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

// listen returns a loopback listener closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// serve runs f until the test ends and checks that it returned cleanly.
func serve(t *testing.T, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server returned %v", err)
		}
	})
}

func TestServeHTTP(t *testing.T) {
	ln := listen(t)
	serve(t, func(ctx context.Context) error { return ServeHTTP(ctx, ln) })
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	for _, n := range []int{100, 65536, 0} {
		resp, err := c.Get("http://" + ln.Addr().String() + "/b/" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(b) != n || resp.ContentLength != int64(n) {
			t.Errorf("GET /b/%d: status %d, %d bytes, Content-Length %d, err %v", n, resp.StatusCode, len(b), resp.ContentLength, err)
		}
	}
}

func TestServeTCP(t *testing.T) {
	ln := listen(t)
	serve(t, func(ctx context.Context) error { return ServeTCP(ctx, ln) })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{ModeEcho, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo: %q, %v", buf, err)
	}

	g, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	_ = g.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := g.Write([]byte{ModeGenerate}); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(g, make([]byte, 3*chunk)); err != nil {
		t.Fatalf("generate: read %d bytes: %v", n, err)
	}
	// The connections are still open: the server closes them on return.
}
