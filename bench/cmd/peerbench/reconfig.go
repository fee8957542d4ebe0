package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Bounds of the reconfiguration figures.
const (
	reconfigPoll    = 500 * time.Microsecond // between two requests for the new host
	reconfigLimit   = 5 * time.Second        // a change not serving by then is a timeout
	reconfigBetween = 100 * time.Millisecond // between two changes
	fillerPerSvc    = 10                     // backends per filler service
)

// reconfigResult is the timing of one configuration size.
type reconfigResult struct {
	extra    int           // backends in the file besides the benchmark's two
	start    time.Duration // cutover's start to its first route serving
	times    []time.Duration
	timeouts int
	rssKiB   int64
	err      string
}

// reconfigure times cutover's reconfiguration from a file change to the new
// route serving, for each configuration size.
func (b *bench) reconfigure(ctx context.Context) []reconfigResult {
	if b.cutover == "" {
		return nil
	}
	var out []reconfigResult
	for _, extra := range b.opt.reconfigSizes {
		r := b.reconfigOne(ctx, extra)
		if r.err != "" {
			b.logf("reconfiguration, %d extra backends: %s", extra, r.err)
		} else {
			b.logf("reconfiguration, %d extra backends: start %s, change to serving median %s, max %s, %d timeouts",
				extra, fmtMS(r.start), fmtMS(median(r.times)), fmtMS(maxDuration(r.times)), r.timeouts)
		}
		out = append(out, r)
	}
	return out
}

// reconfigYAML is a file with the benchmark's service on host bench.test,
// extra filler backends (services of fillerPerSvc, never sent a request),
// and, unless newHost is "", one more service on newHost.
func reconfigYAML(extra int, newHost string, backends []string) string {
	var sb strings.Builder
	list := "[" + strings.Join(backends, ", ") + "]"
	fmt.Fprintf(&sb, "services:\n  bench:\n    host: bench.test\n    backends: %s\n", list)
	for i := 0; i*fillerPerSvc < extra; i++ {
		fmt.Fprintf(&sb, "  fill-%05d:\n    host: fill-%05d.test\n    backends: [", i, i)
		for j := 0; j < fillerPerSvc && i*fillerPerSvc+j < extra; j++ {
			if j > 0 {
				sb.WriteString(", ")
			}
			// Addresses nobody listens on: no request or probe goes there.
			fmt.Fprintf(&sb, "127.0.0.1:%d", 10000+i*fillerPerSvc+j)
		}
		sb.WriteString("]\n")
	}
	if newHost != "" {
		fmt.Fprintf(&sb, "  added:\n    host: %s\n    backends: [%s]\n", newHost, backends[0])
	}
	return sb.String()
}

func (b *bench) reconfigOne(ctx context.Context, extra int) reconfigResult {
	r := reconfigResult{extra: extra}
	fail := func(err error) reconfigResult { r.err = err.Error(); return r }
	dir, err := b.runDir(fmt.Sprintf("cutover-reconfig-%d", extra))
	if err != nil {
		return fail(err)
	}
	cfg, err := writeFile(dir, "cutover.yaml", reconfigYAML(extra, "", b.httpBackends))
	if err != nil {
		return fail(err)
	}
	listen, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	t0 := time.Now()
	proc, err := b.startCutoverWith(dir, cfg, listen)
	if err != nil {
		return fail(err)
	}
	defer b.sup.stop(proc, stopGrace)
	if err := poll(ctx, listen, proc, readyTimeout, func() error { return getHost(client, listen, "bench.test") }); err != nil {
		return fail(err)
	}
	r.start = time.Since(t0)
	tmp := filepath.Join(dir, ".cutover.yaml.new")
	for i := 1; i <= b.opt.reconfig && ctx.Err() == nil; i++ {
		host := fmt.Sprintf("new-%d.test", i)
		if err := os.WriteFile(tmp, []byte(reconfigYAML(extra, host, b.httpBackends)), 0o644); err != nil {
			return fail(err)
		}
		t := time.Now()
		if err := os.Rename(tmp, cfg); err != nil {
			return fail(err)
		}
		for {
			if getHost(client, listen, host) == nil {
				r.times = append(r.times, time.Since(t))
				break
			}
			if time.Since(t) > reconfigLimit {
				r.timeouts++
				break
			}
			time.Sleep(reconfigPoll)
		}
		if proc.exited() {
			return fail(fmt.Errorf("cutover exited: %v%s", proc.err, proc.tail()))
		}
		time.Sleep(reconfigBetween)
	}
	r.rssKiB = groupPeakRSS(proc.pid())
	return r
}

// getHost sends GET /b/0 with Host host through the proxy at addr; nil when
// it answers 200.
func getHost(c *http.Client, addr, host string) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/b/0", nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
