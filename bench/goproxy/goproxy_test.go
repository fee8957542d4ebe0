package goproxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/bench/backend"
	"github.com/cutoverproxy/cutover/bench/tcpload"
)

// run starts f on a fresh loopback listener until the test ends and returns
// its address.
func run(t *testing.T, f func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server returned %v", err)
		}
	})
	return ln.Addr().String()
}

func TestForward(t *testing.T) {
	b1 := run(t, backend.ServeTCP)
	b2 := run(t, backend.ServeTCP)
	fw := run(t, func(ctx context.Context, ln net.Listener) error { return Forward(ctx, ln, []string{b1, b2}) })
	r, err := tcpload.Echo(context.Background(), tcpload.Config{Addr: fw, Connections: 4, Duration: 200 * time.Millisecond})
	if err != nil || r.Ops == 0 || r.Errors != 0 {
		t.Fatalf("echo through Forward: %+v, %v", r, err)
	}
	r, err = tcpload.Bulk(context.Background(), tcpload.Config{Addr: fw, Connections: 2, Duration: 200 * time.Millisecond})
	if err != nil || r.Bytes == 0 || r.Errors != 0 {
		t.Fatalf("bulk through Forward: %+v, %v", r, err)
	}
}

func TestServeReverse(t *testing.T) {
	b1 := run(t, backend.ServeHTTP)
	b2 := run(t, backend.ServeHTTP)
	rp := run(t, func(ctx context.Context, ln net.Listener) error {
		return ServeReverse(ctx, ln, []string{b1, b2}, ReverseOptions{})
	})
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	for range 4 {
		resp, err := c.Get("http://" + rp + "/b/1000")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) != 1000 {
			t.Fatalf("GET through ServeReverse: status %d, %d bytes, %v", resp.StatusCode, len(body), err)
		}
	}
}
