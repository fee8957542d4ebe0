package main

import (
	"strings"
	"testing"
	"time"
)

const wrkOutput = `Running 2s test @ http://127.0.0.1:8080/b/100
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.47ms    1.01ms  21.50ms   93.09%
    Req/Sec    22.77k     2.09k   26.37k    72.50%
  Latency Distribution
     50%  850.00us
     75%    1.61ms
     90%    2.05ms
     99%    1.02s
  90613 requests in 2.00s, 11.23MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  45212.09
Transfer/sec:      5.60MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{requests: 90613, elapsed: 2 * time.Second, rate: 45212.09,
		p50: 850 * time.Microsecond, p99: 1020 * time.Millisecond, errors: 11}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
}

func TestParseWrkIncomplete(t *testing.T) {
	// wrk without --latency, or a run that died: no distribution.
	out := strings.Replace(wrkOutput, "     50%  850.00us\n", "", 1)
	if _, err := parseWrk(out); err == nil {
		t.Error("parseWrk accepted output without the 50% line")
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("parseWrk accepted an error message")
	}
}

func TestParseWrkDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"850.00us", 850 * time.Microsecond},
		{"1.27ms", 1270 * time.Microsecond},
		{"2.00s", 2 * time.Second},
		{"1.50m", 90 * time.Second},
		{"1.00h", time.Hour},
	} {
		got, err := parseWrkDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseWrkDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "12", "x ms", "1.0d"} {
		if _, err := parseWrkDuration(bad); err == nil {
			t.Errorf("parseWrkDuration(%q) succeeded", bad)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	o := options{threads: 2, connections: 64, duration: 2500 * time.Millisecond}
	got := strings.Join(wrkArgs(o, workloadByName("close"), "http://a/b/100"), " ")
	want := "wrk -t2 -c64 -d3s --latency --timeout 5s -H Connection: close http://a/b/100"
	if got != want {
		t.Errorf("wrkArgs = %q, want %q", got, want)
	}
}
