package tcpload

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/bench/backend"
)

// startBackend runs a backend.ServeTCP until the test ends.
func startBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = backend.ServeTCP(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestEcho(t *testing.T) {
	addr := startBackend(t)
	r, err := Echo(context.Background(), Config{Addr: addr, Connections: 4, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Bytes != r.Ops*DefaultSize {
		t.Errorf("Echo = %+v; want round trips, no errors, 0 < p50 ≤ p99, Bytes = Ops × %d", r, DefaultSize)
	}
	if r.Elapsed < 200*time.Millisecond || r.Elapsed > 200*time.Millisecond+grace {
		t.Errorf("Elapsed = %s, want about 200ms", r.Elapsed)
	}
}

func TestBulk(t *testing.T) {
	addr := startBackend(t)
	r, err := Bulk(context.Background(), Config{Addr: addr, Connections: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes == 0 || r.Errors != 0 || r.MBps() <= 0 {
		t.Errorf("Bulk = %+v; want bytes and no errors", r)
	}
}

func TestNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if _, err := Echo(context.Background(), Config{Addr: addr, Connections: 1, Duration: 100 * time.Millisecond}); err == nil {
		t.Error("Echo to a closed port succeeded")
	}
}

func TestCancel(t *testing.T) {
	addr := startBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Echo(ctx, Config{Addr: addr, Connections: 2, Duration: time.Minute})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("Echo with a cancelled context: err %v after %s; want an error at once", err, time.Since(start))
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := Percentile(s, tc.p); got != tc.want {
			t.Errorf("Percentile(1..100, %v) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("Percentile(nil) != 0")
	}
}
