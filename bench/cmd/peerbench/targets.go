package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// The targets of issue 7 for cutover.
const (
	targetCPURatioSmall = 1.5                   // keep-alive 100 B and new connections: CPU per request vs HAProxy
	targetCPURatioLarge = 1.3                   // keep-alive 64 KiB
	targetRSSMiB        = 40                    // peak RSS in every workload
	targetReconfig      = 50 * time.Millisecond // a file change serving
)

// targets says, for each target of issue 7 that this run measured, where
// cutover stands.
func (b *bench) targets(res map[runKey]*outcome, rc []reconfigResult) string {
	get := func(wl, p string) (cell, bool) {
		o := res[runKey{wl, p}]
		if o == nil {
			return cell{}, false
		}
		c := summarize(workloadByName(wl), o)
		return c, c.ok
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	// byRun is cutover's figure over the peer's, run by run, when there
	// were several: the medians may come from different moments of a host
	// whose speed drifts, while the runs of one repetition ran one after
	// the other.
	byRun := func(wl, peer string, f func(sample) float64) string {
		r := runRatios(res[runKey{wl, "cutover"}], res[runKey{wl, peer}], f)
		if len(r) < 2 {
			return ""
		}
		s := make([]string, len(r))
		for i, x := range r {
			s[i] = fmt.Sprintf("%.2f×", x)
		}
		return " (run by run " + strings.Join(s, ", ") + ")"
	}
	rate := func(s sample) float64 { return s.rate }
	var lines []string
	cpuTarget := func(wl string, limit float64) {
		cu, ok1 := get(wl, "cutover")
		h, ok2 := get(wl, baseline)
		if !ok1 || !ok2 {
			return
		}
		r := cu.cpuPer / h.cpuPer
		w := workloadByName(wl)
		line := fmt.Sprintf("%s: CPU per request %.2f× HAProxy's%s (target ≤ %.1f×): %s", w.title, r,
			byRun(wl, baseline, func(s sample) float64 { return s.cpuPer(w) }), limit, verdict(r <= limit))
		for _, peer := range peerList() {
			if peer.name != "caddy" && peer.name != "traefik" {
				continue // the Go peers of the target
			}
			if c, ok := get(wl, peer.name); ok && wl != "ka64k" {
				line += fmt.Sprintf("; %s req/s against %s's %s (target: more): %s",
					fmtNum(cu.rate, "%.0f"), peer.title, fmtNum(c.rate, "%.0f"), verdict(cu.rate > c.rate))
			}
		}
		lines = append(lines, line)
	}
	cpuTarget("ka100", targetCPURatioSmall)
	cpuTarget("close", targetCPURatioSmall)
	cpuTarget("ka64k", targetCPURatioLarge)
	if cu, ok := get("tcpbulk", "cutover"); ok {
		if c, ok := get("tcpbulk", "iocopy"); ok {
			lines = append(lines, fmt.Sprintf("TCP bulk: %.0f MB/s against the io.Copy forwarder's %.0f%s (target: at least as much): %s",
				cu.rate, c.rate, byRun("tcpbulk", "iocopy", rate), verdict(cu.rate >= c.rate)))
		}
	}
	if cu, ok := get("tcpecho", "cutover"); ok {
		if h, ok := get("tcpecho", baseline); ok {
			lines = append(lines, fmt.Sprintf("TCP echo: %s round trips/s against HAProxy's %s%s (target: at least as many): %s",
				fmtNum(cu.rate, "%.0f"), fmtNum(h.rate, "%.0f"), byRun("tcpecho", baseline, rate), verdict(cu.rate >= h.rate)))
		}
	}
	var rss []string
	worst := 0.0
	for _, wl := range b.opt.workloads {
		if c, ok := get(wl, "cutover"); ok && !math.IsNaN(c.rss) {
			rss = append(rss, fmt.Sprintf("%s %.1f", wl, c.rss))
			worst = max(worst, c.rss)
		}
	}
	if len(rss) > 0 {
		lines = append(lines, fmt.Sprintf("peak RSS (MiB: %s; target < %d in every workload): %s",
			strings.Join(rss, ", "), targetRSSMiB, verdict(worst < targetRSSMiB)))
	}
	for _, r := range rc {
		if r.err != "" || len(r.times) == 0 {
			continue
		}
		m, mx := median(r.times), maxDuration(r.times)
		lines = append(lines, fmt.Sprintf("file change to serving with %s backends: median %s, max %s (target ≤ %s): %s",
			fmtNum(float64(r.extra+2), "%.0f"), fmtMS(m), fmtMS(mx), targetReconfig, verdict(mx <= targetReconfig && r.timeouts == 0)))
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n#### cutover against the targets of issue 7\n\n- " + strings.Join(lines, "\n- ") + "\n"
}

// runRatios is f of a's samples over f of b's of the same repetition, in
// a's order; repetitions that either lacks (a failed run) are left out.
func runRatios(a, b *outcome, f func(sample) float64) []float64 {
	if a == nil || b == nil {
		return nil
	}
	var out []float64
	for _, x := range a.samples {
		for _, y := range b.samples {
			if y.rep == x.rep {
				out = append(out, f(x)/f(y))
				break
			}
		}
	}
	return out
}
