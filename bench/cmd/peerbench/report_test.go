package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedianFloat(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 5, nan}, 5},
		{[]float64{7}, 7},
	} {
		if got := medianFloat(tc.in); got != tc.want {
			t.Errorf("medianFloat(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(medianFloat([]float64{nan})) || !math.IsNaN(medianFloat(nil)) {
		t.Error("medianFloat of no numbers is not NaN")
	}
}

func TestFmtNum(t *testing.T) {
	for _, tc := range []struct {
		v      float64
		format string
		want   string
	}{
		{9712.4, "%.0f", "9712"},
		{38912.6, "%.0f", "38,913"},
		{1234567, "%.0f", "1,234,567"},
		{6.666, "%.2f", "6.67"},
		{math.NaN(), "%.2f", "–"},
	} {
		if got := fmtNum(tc.v, tc.format); got != tc.want {
			t.Errorf("fmtNum(%v, %q) = %q, want %q", tc.v, tc.format, got, tc.want)
		}
	}
}

func TestPercentileDuration(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if got := percentileDuration(d, 90); got != 9 {
		t.Errorf("p90 = %d, want 9", got)
	}
	if median(d) != 5 { // (5+6)/2 truncated
		t.Errorf("median = %d, want 5", median(d))
	}
	if maxDuration(d) != 10 || maxDuration(nil) != 0 {
		t.Error("maxDuration")
	}
}

func TestWorkloadTable(t *testing.T) {
	b := &bench{opt: options{threads: 2, connections: 64, duration: 2 * time.Second}}
	for _, p := range peerList() {
		if p.name == "haproxy" || p.name == "cutover" || p.name == "noproxy" {
			b.peers = append(b.peers, p)
		}
	}
	w := workloadByName("ka100")
	nan := math.NaN()
	res := map[runKey]*outcome{
		{"ka100", "haproxy"}: {samples: []sample{{rate: 10000, ops: 100000, cpu: 6, rssKiB: 10240, p50: time.Millisecond, p99: 4 * time.Millisecond}}},
		{"ka100", "cutover"}: {samples: []sample{{rate: 5000, ops: 50000, cpu: 6, rssKiB: 20480, p50: 2 * time.Millisecond, p99: 4 * time.Millisecond}},
			errs: []string{"cutover exited\n  log line 1\n  panic: boom"}},
		{"ka100", "noproxy"}: {samples: []sample{{rate: 40000, ops: 400000, cpu: nan, rssKiB: nan, p50: time.Millisecond, p99: time.Millisecond}}},
	}
	var sb strings.Builder
	b.workloadTable(&sb, w, res)
	got := sb.String()
	for _, want := range []string{
		"| HAProxy | 10,000 (1.00) | 1.00 (1.00) | 4.00 (1.00) | 6.00 (1.00) | 10.0 (1.00) | 0 |",
		"| cutover (1 of 2 runs failed) | 5000 (0.50) | 2.00 (2.00) | 4.00 (1.00) | 12.00 (2.00) | 20.0 (2.00) | 0 |",
		"| no proxy (one backend) | 40,000 (4.00) | 1.00 (1.00) | 1.00 (0.25) | – | – | 0 |",
		"- cutover: cutover exited … panic: boom",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

// TestTargetsCompareWithCaddyAndTraefik: the request-rate target names
// both Go peers and says missed for the one cutover does not beat.
func TestTargetsCompareWithCaddyAndTraefik(t *testing.T) {
	one := func(rate, cpu float64) *outcome {
		return &outcome{samples: []sample{{rate: rate, ops: rate * 10, cpu: cpu, rssKiB: 20 << 10}}}
	}
	res := map[runKey]*outcome{
		{"ka100", "haproxy"}: one(40000, 4),
		{"ka100", "cutover"}: one(30000, 4),
		{"ka100", "caddy"}:   one(15000, 4),
		{"ka100", "traefik"}: one(31000, 4),
	}
	b := &bench{opt: options{workloads: []string{"ka100"}}}
	got := b.targets(res, nil)
	for _, want := range []string{
		"CPU per request 1.33× HAProxy's (target ≤ 1.5×): met",
		"30,000 req/s against Caddy's 15,000 (target: more): met",
		"30,000 req/s against Traefik's 31,000 (target: more): **missed**",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets lack %q:\n%s", want, got)
		}
	}
}

// TestTargetsGiveRatiosRunByRun checks that a target line gives, beside
// the ratio of the medians, cutover's figure over the peer's for each
// repetition both measured.
func TestTargetsGiveRatiosRunByRun(t *testing.T) {
	runs := func(cpus ...float64) *outcome {
		o := &outcome{}
		for i, c := range cpus {
			if c > 0 { // 0: the run failed
				o.samples = append(o.samples, sample{rep: i + 1, rate: 1000, ops: 1e5, cpu: c})
			}
		}
		return o
	}
	res := map[runKey]*outcome{
		{"ka100", "haproxy"}: runs(2, 4, 3, 5),
		{"ka100", "cutover"}: runs(3, 5, 0, 6),
	}
	b := &bench{opt: options{workloads: []string{"ka100"}}}
	want := "CPU per request 1.43× HAProxy's (run by run 1.50×, 1.25×, 1.20×) (target ≤ 1.5×): met"
	if got := b.targets(res, nil); !strings.Contains(got, want) {
		t.Errorf("targets lack %q:\n%s", want, got)
	}
}

func TestNoteItemKeepsOutputInTheItem(t *testing.T) {
	if got := noteItem("one line"); got != "- one line\n" {
		t.Errorf("noteItem(one line) = %q", got)
	}
	got := noteItem("Traefik is not built: go build: exit status 1\n# github.com/traefik/x\npkg/a.go:1:2: undefined: b\n")
	want := "- Traefik is not built: go build: exit status 1\n\n  ```\n  # github.com/traefik/x\n  pkg/a.go:1:2: undefined: b\n  ```\n\n"
	if got != want {
		t.Errorf("noteItem = %q, want %q", got, want)
	}
}
