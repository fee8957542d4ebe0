package tcpload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cutoverproxy/cutover/bench/backend"
)

// bulkBuffer is the read size of Bulk.
const bulkBuffer = 64 << 10

// Echo runs request/response round trips of cfg.Size bytes on each
// connection, one at a time, until cfg.Duration has passed: the shape of a
// database or cache protocol. Result.Ops counts round trips.
func Echo(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	msg := bytes.Repeat([]byte{'x'}, cfg.Size)
	return run(ctx, cfg, backend.ModeEcho, func(c net.Conn, end time.Time) (int64, int64, []time.Duration, error) {
		buf := make([]byte, cfg.Size)
		lat := make([]time.Duration, 0, 1024)
		var ops int64
		for {
			t := time.Now()
			if !t.Before(end) {
				return ops, ops * int64(cfg.Size), lat, nil
			}
			if _, err := c.Write(msg); err != nil {
				return ops, ops * int64(cfg.Size), lat, fmt.Errorf("write: %w", err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return ops, ops * int64(cfg.Size), lat, fmt.Errorf("read echo: %w", err)
			}
			ops++
			if len(lat) < maxSamples {
				lat = append(lat, time.Since(t))
			}
		}
	})
}

// Bulk has the backend stream to each connection as fast as it is read
// until cfg.Duration has passed: the download direction of a bulk transfer.
// Result.Bytes counts what was received.
func Bulk(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	return run(ctx, cfg, backend.ModeGenerate, func(c net.Conn, end time.Time) (int64, int64, []time.Duration, error) {
		_ = c.SetReadDeadline(end)
		buf := make([]byte, bulkBuffer)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				if isDeadline(err) && !time.Now().Before(end) {
					return 0, n, nil, nil
				}
				return 0, n, nil, fmt.Errorf("read: %w", err)
			}
		}
	})
}
