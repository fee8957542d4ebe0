// Package tcpload drives the TCP workloads of the peer benchmarks against a
// backend.ServeTCP server, directly or through a proxy: request/response
// round trips (Echo) and streaming throughput (Bulk).
//
// Every run is bounded by Config.Duration and by its context: connections
// carry deadlines, so a proxy that stops answering cannot hold a run open.
package tcpload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultConnections = 64
	DefaultDuration    = 10 * time.Second
	DefaultSize        = 128
	// DefaultDialTimeout bounds each connection attempt.
	DefaultDialTimeout = 5 * time.Second
	// grace is how long after Duration a connection may still take to
	// finish its last round trip before it counts as an error.
	grace = 5 * time.Second
	// maxSamples caps the latency samples kept per connection (memory).
	maxSamples = 1 << 20
)

// Config describes one load run.
type Config struct {
	// Addr is the host:port to connect to.
	Addr string
	// Connections run concurrently. Zero means DefaultConnections.
	Connections int
	// Duration of the measured run. Zero means DefaultDuration.
	Duration time.Duration
	// Size of an echo message in bytes; Bulk ignores it. Zero means
	// DefaultSize.
	Size int
}

func (c Config) withDefaults() Config {
	if c.Connections <= 0 {
		c.Connections = DefaultConnections
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Size <= 0 {
		c.Size = DefaultSize
	}
	return c
}

// Result is what one run measured.
type Result struct {
	// Ops is the number of completed round trips (Echo).
	Ops int64
	// Bytes is the number of payload bytes received (Bulk, and Echo's
	// echoed bytes).
	Bytes int64
	// Elapsed is the measured time, from the moment every connection was
	// open to the end of the last one.
	Elapsed time.Duration
	// P50 and P99 are round-trip latencies (Echo only).
	P50, P99 time.Duration
	// Errors counts connections that failed before the run ended; FirstErr
	// is the first of them.
	Errors   int64
	FirstErr error
}

// Rate is Ops per second.
func (r Result) Rate() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// MBps is megabytes (10^6) received per second.
func (r Result) MBps() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// worker is the per-connection part of a run.
type worker func(c net.Conn, end time.Time) (ops, bytes int64, lat []time.Duration, err error)

// run opens cfg.Connections connections, sends each the mode byte, and runs
// w on all of them at once.
func run(ctx context.Context, cfg Config, mode byte, w worker) (Result, error) {
	conns, err := dialAll(ctx, cfg, mode)
	if err != nil {
		return Result{}, err
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	defer stop()
	var (
		mu  sync.Mutex
		res Result
		all []time.Duration
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(cfg.Duration)
	for _, c := range conns {
		wg.Go(func() {
			defer func() { _ = c.Close() }()
			_ = c.SetDeadline(end.Add(grace))
			ops, n, lat, err := w(c, end)
			mu.Lock()
			defer mu.Unlock()
			res.Ops += ops
			res.Bytes += n
			all = append(all, lat...)
			if err != nil {
				res.Errors++
				if res.FirstErr == nil {
					res.FirstErr = err
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.P50, res.P99 = Percentile(all, 50), Percentile(all, 99)
	if res.Ops == 0 && res.Bytes == 0 {
		return res, fmt.Errorf("no traffic through %s: %w", cfg.Addr, res.FirstErr)
	}
	return res, nil
}

func dialAll(ctx context.Context, cfg Config, mode byte) ([]net.Conn, error) {
	d := net.Dialer{Timeout: DefaultDialTimeout}
	conns := make([]net.Conn, 0, cfg.Connections)
	for range cfg.Connections {
		c, err := d.DialContext(ctx, "tcp", cfg.Addr)
		if err == nil {
			_, err = c.Write([]byte{mode})
		}
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, fmt.Errorf("connect to %s: %w", cfg.Addr, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// Percentile returns the p-th percentile (nearest rank) of samples, sorting
// them in place; zero for none.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	if !slices.IsSorted(samples) {
		slices.Sort(samples)
	}
	i := int(p/100*float64(len(samples))+0.5) - 1
	return samples[max(0, min(i, len(samples)-1))]
}

// isDeadline reports whether err is the end-of-run deadline firing.
func isDeadline(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
