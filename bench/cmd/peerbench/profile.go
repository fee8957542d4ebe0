package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// profile is a perf CPU profile of cutover under the keep-alive 100 B
// workload.
type profile struct {
	record   string   // the perf record command
	rate     float64  // req/s while profiled
	self     []string // symbols by self time
	children []string // symbols by time including callees
	dsos     []string // time by binary: the kernel, cutover, the vDSO
	err      string
}

// profileCutover samples cutover's stacks with perf while wrk runs the
// keep-alive 100 B workload.
func (b *bench) profileCutover(ctx context.Context) *profile {
	pr := &profile{}
	fail := func(format string, args ...any) *profile {
		pr.err = fmt.Sprintf(format, args...)
		b.logf("profile: %s", pr.err)
		return pr
	}
	perf := lookPath("perf")
	switch {
	case perf == "":
		return fail("perf is not installed (apt-get install linux-perf): no profile")
	case b.cutover == "" || b.bins["wrk"] == "":
		return fail("cutover or wrk is missing: no profile")
	}
	w := workloadByName("ka100")
	dir, err := b.runDir("cutover-profile")
	if err != nil {
		return fail("%v", err)
	}
	listen, err := freeAddr()
	if err != nil {
		return fail("%v", err)
	}
	proc, err := startCutover(b, dir, w, listen)
	if err != nil {
		return fail("%v", err)
	}
	defer b.sup.stop(proc, stopGrace)
	if err := waitHTTP(ctx, listen, proc, readyTimeout); err != nil {
		return fail("%v", err)
	}
	data := filepath.Join(dir, "perf.data")
	secs := strconv.Itoa(wholeSeconds(b.opt.duration))
	rec := []string{perf, "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", strconv.Itoa(proc.pid()), "-o", data, "--", "sleep", secs}
	pr.record = "perf record -e cpu-clock -F 999 -g -p PID -- sleep " + secs
	perfProc, err := b.sup.start("perf", filepath.Join(dir, "perf.log"), nil, rec...)
	if err != nil {
		return fail("%v", err)
	}
	s, _, err := b.load(ctx, w, listen, dir)
	if err != nil {
		b.sup.stop(perfProc, stopGrace)
		return fail("wrk under perf: %v", err)
	}
	pr.rate = s.rate
	select {
	case <-perfProc.done:
	case <-time.After(loadGrace):
	case <-ctx.Done():
	}
	b.sup.stop(perfProc, stopGrace)
	if pr.self, err = perfReport(ctx, perf, data, "--no-children", "symbol", "1"); err != nil {
		return fail("perf report: %v%s", err, perfProc.tail())
	}
	pr.children, _ = perfReport(ctx, perf, data, "--children", "symbol", "10")
	pr.dsos, _ = perfReport(ctx, perf, data, "--no-children", "dso", "0.5")
	return pr
}

// perfReport returns the symbol lines of perf report above limit percent.
func perfReport(ctx context.Context, perf, data, mode, sort, limit string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--stdio", mode,
		"--sort", sort, "--percent-limit", limit, "-g", "none").Output()
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || t[0] < '0' || t[0] > '9' || !strings.Contains(t, "%") {
			continue
		}
		// perf pads with empty columns ("-      -") after the symbol.
		f := strings.Fields(t)
		for len(f) > 0 && f[len(f)-1] == "-" {
			f = f[:len(f)-1]
		}
		lines = append(lines, strings.Join(f, " "))
		if len(lines) == 30 {
			break
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("no samples")
	}
	return lines, nil
}
