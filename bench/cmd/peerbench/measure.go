package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cutoverproxy/cutover/bench/backend"
	"github.com/cutoverproxy/cutover/bench/tcpload"
)

// Bounds of one measured run besides its duration.
const (
	readyTimeout = 15 * time.Second // a proxy's start until it serves
	stopGrace    = 3 * time.Second  // SIGTERM to SIGKILL
	loadGrace    = 30 * time.Second // wrk's or the TCP load's overrun
	settle       = 300 * time.Millisecond
)

// sample is what one run of one proxy under one workload measured.
type sample struct {
	rep      int     // which repetition, from 1: the runs of one rep ran one after the other
	rate     float64 // req/s, round trips/s, or MB/s (bulk)
	p50, p99 time.Duration
	ops      float64 // requests, round trips, or bytes (bulk)
	cpu      float64 // proxy CPU seconds; NaN without a proxy
	rssKiB   float64 // proxy peak RSS; NaN without a proxy
	errors   int64
	// foreign is the share of the machine's CPUs that processes other than
	// the benchmark's used during the run: the noise.
	foreign float64
}

// cpuPer is the proxy's CPU seconds per 100k requests or round trips, or
// per GB for bulk.
func (s sample) cpuPer(w workload) float64 {
	if w.bulk {
		return s.cpu / (s.ops / 1e9)
	}
	return s.cpu / s.ops * 1e5
}

// runKey names a cell of the result tables.
type runKey struct{ workload, peer string }

// outcome is the samples of one cell and the last error, if a run failed.
type outcome struct {
	samples []sample
	errs    []string
}

// runWorkloads runs every selected workload against every available peer,
// interleaving repetitions: for each workload, rep 1 of every peer, then rep
// 2 of every peer, and so on.
func (b *bench) runWorkloads(ctx context.Context) map[runKey]*outcome {
	res := map[runKey]*outcome{}
	for _, name := range b.opt.workloads {
		w := workloadByName(name)
		if (w.h2 && b.bins["h2load"] == "") || (!w.tcp && !w.h2 && b.bins["wrk"] == "") {
			continue
		}
		for rep := 1; rep <= b.opt.reps; rep++ {
			for _, p := range b.peers {
				if !p.serves(w) || (w.tcp && b.noTCP[p.name] != "") {
					continue
				}
				if ctx.Err() != nil {
					return res
				}
				k := runKey{w.name, p.name}
				if res[k] == nil {
					res[k] = &outcome{}
				}
				s, err := b.runOne(ctx, p, w)
				if err != nil {
					if ctx.Err() != nil {
						return res
					}
					b.logf("[%s %d/%d] %s: %v", w.name, rep, b.opt.reps, p.name, err)
					if w.tcp && p.tcpByTrying && errors.Is(err, errNotReady) {
						b.noTCP[p.name] = err.Error()
						b.note("%s does not serve TCP here (tcp.listen not built yet?): its TCP rows are skipped. %v", p.name, err)
						delete(res, k)
						continue
					}
					res[k].errs = append(res[k].errs, err.Error())
					continue
				}
				s.rep = rep
				res[k].samples = append(res[k].samples, s)
				b.logf("[%s %d/%d] %-8s %s", w.name, rep, b.opt.reps, p.name, s.summary(w))
			}
		}
	}
	return res
}

func (s sample) summary(w workload) string {
	out := fmt.Sprintf("%.0f %s", s.rate, w.unit())
	if !w.bulk {
		out += fmt.Sprintf(", p50 %s, p99 %s", fmtMS(s.p50), fmtMS(s.p99))
	}
	if !math.IsNaN(s.cpu) {
		out += fmt.Sprintf(", %.2f %s, peak RSS %.1f MiB", s.cpuPer(w), w.cpuUnit(), s.rssKiB/1024)
	}
	if s.errors > 0 {
		out += fmt.Sprintf(", %d errors", s.errors)
	}
	return out + fmt.Sprintf(", other processes %.0f%% CPU", s.foreign*100)
}

// errNotReady marks a proxy that started but never served.
var errNotReady = errors.New("not serving")

// runOne starts the peer, waits until it serves, runs the load, and stops
// it; the proxy's CPU and peak RSS are read from /proc before it stops.
func (b *bench) runOne(ctx context.Context, p peer, w workload) (sample, error) {
	dir, err := b.runDir(p.name + "-" + w.name)
	if err != nil {
		return sample{}, err
	}
	target := b.backends(w)[0]
	var proc *process
	if p.start != nil {
		if target, err = freeAddr(); err != nil {
			return sample{}, err
		}
		if proc, err = p.start(b, dir, w, target); err != nil {
			return sample{}, err
		}
		defer b.sup.stop(proc, stopGrace)
	}
	switch {
	case w.tcp:
		err = waitTCP(ctx, target, proc, readyTimeout)
	case w.h2:
		err = waitHTTP2(ctx, target, proc, readyTimeout)
	default:
		err = waitHTTP(ctx, target, proc, readyTimeout)
	}
	if err != nil {
		return sample{}, err
	}
	time.Sleep(settle)

	before := b.snapshot(proc)
	s, wrkCPU, err := b.load(ctx, w, target, dir)
	after := b.snapshot(proc)
	if err != nil {
		return sample{}, err
	}
	if proc != nil {
		if proc.exited() {
			return sample{}, fmt.Errorf("%s exited during the run: %v%s", p.name, proc.err, proc.tail())
		}
		s.cpu = after.proxy - before.proxy
		s.rssKiB = float64(groupPeakRSS(proc.pid()))
	} else {
		s.cpu, s.rssKiB = math.NaN(), math.NaN()
	}
	ours := (after.proxy - before.proxy) + (after.backends - before.backends) + (after.self - before.self) + wrkCPU
	elapsed := after.at.Sub(before.at).Seconds()
	s.foreign = max(0, (after.system-before.system-ours)/(elapsed*float64(runtime.NumCPU())))
	time.Sleep(settle)
	return s, nil
}

// cpuSnapshot is the CPU seconds used so far by each party of a run.
type cpuSnapshot struct {
	at                            time.Time
	proxy, backends, self, system float64
}

func (b *bench) snapshot(proc *process) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), self: selfCPU(), system: systemBusy()}
	if proc != nil {
		s.proxy = groupCPU(proc.pid())
	}
	for _, bp := range b.backendProcs {
		s.backends += groupCPU(bp.pid())
	}
	return s
}

// load runs the workload's traffic against target and returns what it
// measured and the CPU seconds of wrk, if wrk ran.
func (b *bench) load(ctx context.Context, w workload, target, dir string) (sample, float64, error) {
	if w.tcp {
		cfg := tcpload.Config{Addr: target, Connections: b.opt.connections, Duration: b.opt.duration, Size: 128}
		ctx, cancel := context.WithTimeout(ctx, b.opt.duration+loadGrace)
		defer cancel()
		if w.bulk {
			cfg.Connections = b.opt.bulkConns
			r, err := tcpload.Bulk(ctx, cfg)
			return sample{rate: r.MBps(), ops: float64(r.Bytes), errors: r.Errors}, 0, err
		}
		r, err := tcpload.Echo(ctx, cfg)
		return sample{rate: r.Rate(), ops: float64(r.Ops), p50: r.P50, p99: r.P99, errors: r.Errors}, 0, err
	}
	if w.h2 {
		return b.loadH2(ctx, w, target, dir)
	}
	r, cpu, err := b.runClient(ctx, dir, wrkArgs(b.opt, w, "http://"+target+w.path), parseWrk)
	return r.sample(), cpu, err
}

// runClient runs an HTTP load client (args[0] names it: wrk, h2load)
// with its output in dir, parses the output, and returns the result and
// the client's CPU seconds.
func (b *bench) runClient(ctx context.Context, dir string, args []string, parse func(string) (wrkResult, error)) (wrkResult, float64, error) {
	name := args[0]
	out := filepath.Join(dir, name+".out")
	args[0] = b.bins[name]
	p, err := b.sup.run(ctx, wrkDuration(b.opt)+loadGrace, name, out, args...)
	if err != nil {
		return wrkResult{}, 0, err
	}
	text, err := os.ReadFile(out)
	if err != nil {
		return wrkResult{}, 0, err
	}
	r, err := parse(string(text))
	if err != nil {
		return wrkResult{}, 0, err
	}
	st := p.cmd.ProcessState
	return r, (st.UserTime() + st.SystemTime()).Seconds(), nil
}

func (r wrkResult) sample() sample {
	return sample{rate: r.rate, ops: float64(r.requests), p50: r.p50, p99: r.p99, errors: r.errors}
}

func wrkDuration(o options) time.Duration {
	return time.Duration(wholeSeconds(o.duration)) * time.Second
}

// waitHTTP polls GET /b/100 on addr until it answers 200, proc exits, or
// limit passes.
func waitHTTP(ctx context.Context, addr string, proc *process, limit time.Duration) error {
	return waitGet(ctx, "http://"+addr, &http.Transport{DisableKeepAlives: true}, 1, proc, limit)
}

// waitHTTP2 is waitHTTP over HTTP/2 with TLS (the benchmark's self-signed
// certificate).
func waitHTTP2(ctx context.Context, addr string, proc *process, limit time.Duration) error {
	tr := &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the benchmark's own certificate
	return waitGet(ctx, "https://"+addr, tr, 2, proc, limit)
}

// waitGet polls GET base/b/100 through tr until it answers 200 in HTTP
// major version proto.
func waitGet(ctx context.Context, base string, tr *http.Transport, proto int, proc *process, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: tr}
	return poll(ctx, base, proc, limit, func() error {
		resp, err := c.Get(base + "/b/100")
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != proto {
			return fmt.Errorf("%s over %s, want 200 over HTTP/%d", resp.Status, resp.Proto, proto)
		}
		return nil
	})
}

// loadH2 runs h2load against target and returns what it measured and
// its CPU seconds.
func (b *bench) loadH2(ctx context.Context, w workload, target, dir string) (sample, float64, error) {
	logFile := filepath.Join(dir, "h2load.log")
	r, cpu, err := b.runClient(ctx, dir, h2loadArgs(b.opt, "https://"+target+w.path, logFile), parseH2load)
	if err != nil {
		return sample{}, 0, err
	}
	if r.p50, r.p99, err = h2loadPercentiles(logFile); err != nil {
		return sample{}, 0, err
	}
	_ = os.Remove(logFile) // several MB a run
	return r.sample(), cpu, nil
}

// waitTCP polls an echo round trip on addr.
func waitTCP(ctx context.Context, addr string, proc *process, limit time.Duration) error {
	return poll(ctx, addr, proc, limit, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte{backend.ModeEcho, 'p', 'i', 'n', 'g'}); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return fmt.Errorf("echo answered %q", buf)
		}
		return nil
	})
}

func poll(ctx context.Context, addr string, proc *process, limit time.Duration, try func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if proc != nil && proc.exited() {
			return fmt.Errorf("%s exited at start (%v): %w%s", proc.name, proc.err, errNotReady, proc.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %w after %s: %v", addr, errNotReady, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
