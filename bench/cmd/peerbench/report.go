package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// baseline is the peer every ratio is taken to.
const baseline = "haproxy"

// cell is the medians of one proxy under one workload.
type cell struct {
	ok                     bool
	runs, failed           int
	rate, cpuPer, rss      float64
	p50, p99               time.Duration
	errors, foreignPercent float64
}

func summarize(w workload, o *outcome) cell {
	c := cell{runs: len(o.samples) + len(o.errs), failed: len(o.errs)}
	if len(o.samples) == 0 {
		return c
	}
	c.ok = true
	pick := func(f func(sample) float64) float64 {
		v := make([]float64, len(o.samples))
		for i, s := range o.samples {
			v[i] = f(s)
		}
		return medianFloat(v)
	}
	c.rate = pick(func(s sample) float64 { return s.rate })
	c.cpuPer = pick(func(s sample) float64 { return s.cpuPer(w) })
	c.rss = pick(func(s sample) float64 { return s.rssKiB / 1024 })
	c.p50 = time.Duration(pick(func(s sample) float64 { return float64(s.p50) }))
	c.p99 = time.Duration(pick(func(s sample) float64 { return float64(s.p99) }))
	c.errors = pick(func(s sample) float64 { return float64(s.errors) })
	c.foreignPercent = pick(func(s sample) float64 { return s.foreign * 100 })
	return c
}

// medianFloat returns the median of the values that are not NaN; NaN when
// there are none.
func medianFloat(v []float64) float64 {
	v = slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func median(d []time.Duration) time.Duration {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = float64(x)
	}
	m := medianFloat(v)
	if math.IsNaN(m) {
		return 0
	}
	return time.Duration(m)
}

func maxDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// percentileDuration is the nearest-rank p-th percentile of d.
func percentileDuration(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// report renders everything measured as markdown.
func (b *bench) report(res map[runKey]*outcome, rc []reconfigResult, prof *profile) string {
	var sb strings.Builder
	o := b.opt
	m := b.machine
	fmt.Fprintf(&sb, "Measured with `%s` on %s.\n\n", shellJoin(append([]string{"go", "run", "./bench/cmd/peerbench"}, o.args...)),
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "- Machine: %d × %s, %s of memory, Linux %s; load average at start: %s.\n", m.cpus, m.cpuModel, kibToGiB(m.memory), m.kernel, m.loadavg)
	fmt.Fprintf(&sb, "- Versions: %s.\n", strings.Join(m.versions, ", "))
	fmt.Fprintf(&sb, "- Every figure is the median of %d interleaved run(s) of %s per proxy (each run starts the proxy afresh); in parentheses, its ratio to HAProxy's figure of the same workload. CPU is the proxy's user+system time (every process and thread) from /proc/PID/stat; peak RSS is VmHWM from /proc/PID/status, summed over nginx's master and workers. Load generators and proxies share the machine's %d cores.\n",
		o.reps, o.duration, m.cpus)
	if f := b.foreign(res); f != "" {
		fmt.Fprintf(&sb, "- %s\n", f)
	}
	for _, n := range b.notes {
		sb.WriteString(noteItem(n))
	}
	for _, name := range o.workloads {
		w := workloadByName(name)
		b.workloadTable(&sb, w, res)
	}
	if t := b.targets(res, rc); t != "" {
		sb.WriteString(t)
	}
	if len(rc) > 0 {
		b.reconfigTable(&sb, rc)
	}
	if prof != nil {
		profileSection(&sb, prof)
	}
	return sb.String()
}

// foreign summarizes how busy the rest of the machine was.
func (b *bench) foreign(res map[runKey]*outcome) string {
	var all []float64
	for _, o := range res {
		for _, s := range o.samples {
			all = append(all, s.foreign*100)
		}
	}
	if len(all) == 0 {
		return ""
	}
	return fmt.Sprintf("Processes other than the benchmark's used a median %.0f%% (at most %.0f%%) of the machine's CPU time during the runs: where that is high, the figures are noisy.",
		medianFloat(all), slices.Max(all))
}

func (b *bench) workloadTable(sb *strings.Builder, w workload, res map[runKey]*outcome) {
	cells := map[string]cell{}
	var rows []peer
	for _, p := range b.peers {
		if o := res[runKey{w.name, p.name}]; o != nil {
			cells[p.name] = summarize(w, o)
			rows = append(rows, p)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(sb, "\n#### %s\n\nLoad: `%s`\n\n", w.title, w.command(b.opt))
	base, haveBase := cells[baseline]
	haveBase = haveBase && base.ok
	if w.bulk {
		fmt.Fprintf(sb, "| proxy | %s | %s | peak RSS MiB | errors |\n|---|--:|--:|--:|--:|\n", w.unit(), w.cpuUnit())
	} else {
		fmt.Fprintf(sb, "| proxy | %s | p50 ms | p99 ms | %s | peak RSS MiB | errors |\n|---|--:|--:|--:|--:|--:|--:|\n", w.unit(), w.cpuUnit())
	}
	var failures []string
	for _, p := range rows {
		c := cells[p.name]
		for _, e := range res[runKey{w.name, p.name}].errs {
			failures = append(failures, fmt.Sprintf("%s: %s", p.title, mdEscape(shortErr(e))))
		}
		title := p.title
		if c.failed > 0 {
			title += fmt.Sprintf(" (%d of %d runs failed)", c.failed, c.runs)
		}
		if !c.ok {
			fmt.Fprintf(sb, "| %s | failed |\n", title)
			continue
		}
		ratio := func(v, h float64, format string) string {
			s := fmtNum(v, format)
			if haveBase && !math.IsNaN(v) && !math.IsNaN(h) && h > 0 {
				s += fmt.Sprintf(" (%.2f)", v/h)
			}
			return s
		}
		rate := ratio(c.rate, base.rate, "%.0f")
		cpu := ratio(c.cpuPer, base.cpuPer, "%.2f")
		rss := ratio(c.rss, base.rss, "%.1f")
		if w.bulk {
			fmt.Fprintf(sb, "| %s | %s | %s | %s | %.0f |\n", title, rate, cpu, rss, c.errors)
			continue
		}
		p50 := ratio(ms(c.p50), ms(base.p50), "%.2f")
		p99 := ratio(ms(c.p99), ms(base.p99), "%.2f")
		fmt.Fprintf(sb, "| %s | %s | %s | %s | %s | %s | %.0f |\n", title, rate, p50, p99, cpu, rss, c.errors)
	}
	if len(failures) > 0 {
		fmt.Fprintf(sb, "\nFailed runs:\n\n- %s\n", strings.Join(failures, "\n- "))
	}
}

// shortErr keeps the first and last lines of a multi-line error (a
// process's log tail).
func shortErr(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) <= 2 {
		return strings.Join(lines, " ")
	}
	return lines[0] + " … " + strings.TrimSpace(lines[len(lines)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtNum formats v, with thousands separators for whole numbers; "–" for
// NaN.
func fmtNum(v float64, format string) string {
	if math.IsNaN(v) {
		return "–"
	}
	if format != "%.0f" || math.Abs(v) < 10000 {
		return fmt.Sprintf(format, v)
	}
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }

func kibToGiB(s string) string {
	var kib float64
	if _, err := fmt.Sscanf(s, "%f kB", &kib); err != nil {
		return s
	}
	return fmt.Sprintf("%.0f GiB", kib/(1<<20))
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (b *bench) reconfigTable(sb *strings.Builder, rc []reconfigResult) {
	fmt.Fprintf(sb, "\n#### Reconfiguration (cutover)\n\n"+
		"From the rename of an edited YAML file over the watched one (the new file adds a service on a new host) to the first 200 for that host, polled every %s; %d changes per size, %s apart. \"Start\" is from cutover's exec to its first route serving.\n\n"+
		"| backends in the file | start | change to serving: median | p90 | max | timeouts (>%s) | peak RSS MiB |\n|--:|--:|--:|--:|--:|--:|--:|\n",
		reconfigPoll, b.opt.reconfig, reconfigBetween, reconfigLimit)
	for _, r := range rc {
		svcs := 1 + (r.extra+fillerPerSvc-1)/fillerPerSvc
		n := fmt.Sprintf("%s (%s)", fmtNum(float64(r.extra+2), "%.0f"), plural(svcs, "service"))
		if r.err != "" {
			fmt.Fprintf(sb, "| %s | failed: %s |\n", n, mdEscape(r.err))
			continue
		}
		fmt.Fprintf(sb, "| %s | %s | %s | %s | %s | %d | %.1f |\n", n, fmtMS(r.start), fmtMS(median(r.times)),
			fmtMS(percentileDuration(r.times, 90)), fmtMS(maxDuration(r.times)), r.timeouts, float64(r.rssKiB)/1024)
	}
}

func profileSection(sb *strings.Builder, pr *profile) {
	sb.WriteString("\n#### CPU profile of cutover, HTTP keep-alive 100 B\n\n")
	if pr.err != "" {
		fmt.Fprintf(sb, "Not taken: %s.\n", pr.err)
		return
	}
	fmt.Fprintf(sb, "`%s` while wrk ran the keep-alive 100 B load (%s req/s under perf). Where the time went, by binary: %s. Symbols by self time (above 1%%; `[k]` is the kernel):\n\n```\n%s\n```\n",
		pr.record, fmtNum(pr.rate, "%.0f"), strings.Join(pr.dsos, ", "), strings.Join(pr.self, "\n"))
	if len(pr.children) > 0 {
		fmt.Fprintf(sb, "\nIncluding callees (above 10%%):\n\n```\n%s\n```\n", strings.Join(pr.children, "\n"))
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmtNum(float64(n), "%.0f") + " " + word + "s"
}

// noteItem is a note as a list item: its first line, and the lines after
// it (a compiler's output, say) as a code block inside the item, so that
// they cannot end the list or read as markdown.
func noteItem(n string) string {
	first, rest, more := strings.Cut(strings.TrimRight(n, "\n"), "\n")
	if !more {
		return "- " + first + "\n"
	}
	rest = strings.ReplaceAll(rest, "```", "` ` `")
	return "- " + first + "\n\n  ```\n  " + strings.ReplaceAll(rest, "\n", "\n  ") + "\n  ```\n\n"
}
