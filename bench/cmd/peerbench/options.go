package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the flags of a bench run.
type options struct {
	duration    time.Duration
	reps        int
	proxies     []string
	workloads   []string
	threads     int
	connections int
	bulkConns   int
	// reconfig is how many file changes are timed per configuration size;
	// zero skips the reconfiguration figures.
	reconfig int
	// reconfigSizes are the numbers of backends in the file besides the
	// benchmark's own, one timing series each.
	reconfigSizes []int
	profile       bool
	install       bool
	out           string
	keep          bool
	timeout       time.Duration
	// cutoverRev, when set, is the git revision cutover is built from
	// instead of the working tree.
	cutoverRev string
	args       []string // as given, for the report
}

func parseOptions(args []string) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured run (whole seconds for wrk)")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of each run, interleaved across proxies; the tables show medians")
	proxies := fs.String("proxies", strings.Join(peerNames(), ","), "comma-separated proxies to measure")
	workloads := fs.String("workloads", strings.Join(workloadNames(), ","), "comma-separated workloads to run")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads (-t)")
	fs.IntVar(&o.connections, "connections", 64, "concurrent connections of wrk (-c) and of the TCP echo load")
	fs.IntVar(&o.bulkConns, "bulk-connections", 4, "concurrent connections of the TCP bulk load")
	fs.IntVar(&o.reconfig, "reconfig", 20, "file changes timed per configuration size for cutover's reconfiguration figures; 0 skips them")
	sizes := fs.String("reconfig-backends", "0,10000", "comma-separated numbers of extra backends (services of 10) in the file for the reconfiguration figures")
	fs.BoolVar(&o.profile, "profile", true, "profile cutover with perf under the keep-alive 100 B workload, when perf is installed")
	fs.BoolVar(&o.install, "install", true, "install missing packages (haproxy nginx libnginx-mod-stream caddy wrk nghttp2-client) with apt-get, and build Traefik once from its module")
	fs.StringVar(&o.out, "out", "", "also write the report to this `file`")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations and logs) for inspection")
	fs.StringVar(&o.cutoverRev, "cutover-rev", "", "build cutover from this git `revision` (git archive) instead of the working tree, e.g. HEAD or main~3")
	fs.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run; zero means an estimate from the other flags plus 10 minutes")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.SetOutput(os.Stderr)
			fmt.Fprintln(os.Stderr, "Usage: peerbench [flags]   (from the repository root)")
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.proxies, err = pickList("-proxies", *proxies, peerNames()); err != nil {
		return o, err
	}
	if o.workloads, err = pickList("-workloads", *workloads, workloadNames()); err != nil {
		return o, err
	}
	if o.reconfigSizes, err = parseInts("-reconfig-backends", *sizes); err != nil {
		return o, err
	}
	switch {
	case o.duration < time.Second:
		return o, fmt.Errorf("-duration %s: want at least 1s", o.duration)
	case o.reps < 1:
		return o, fmt.Errorf("-reps %d: want at least 1", o.reps)
	case o.threads < 1 || o.connections < o.threads || o.bulkConns < 1:
		return o, fmt.Errorf("-threads, -connections, -bulk-connections: want 1 ≤ threads ≤ connections and at least one bulk connection")
	case o.reconfig < 0:
		return o, fmt.Errorf("-reconfig %d: want 0 or more", o.reconfig)
	}
	if o.timeout == 0 {
		runs := len(o.proxies) * len(o.workloads) * o.reps
		o.timeout = time.Duration(runs)*(o.duration+5*time.Second) + 10*time.Minute
		if bin, err := traefikCached(); has(o.proxies, "traefik") && (err != nil || !isFile(bin)) {
			o.timeout += traefikBuild
		}
	}
	return o, nil
}

// pickList splits a comma-separated list and checks each name against known.
func pickList(flagName, v string, known []string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("%s: unknown %q; want some of %s", flagName, s, strings.Join(known, ","))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty; want some of %s", flagName, strings.Join(known, ","))
	}
	return out, nil
}

func parseInts(flagName, v string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 100000 {
			return nil, fmt.Errorf("%s: %q is not a number from 0 to 100000", flagName, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// has reports whether name is in list.
func has(list []string, name string) bool { return slices.Contains(list, name) }
