package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what peerbench reads from wrk's --latency report.
type wrkResult struct {
	requests int64
	elapsed  time.Duration
	rate     float64 // Requests/sec
	p50, p99 time.Duration
	// errors are socket errors (connect, read, write, timeout) plus non-2xx
	// or 3xx responses.
	errors int64
}

// wrkArgs returns wrk's command line for a workload against url.
func wrkArgs(o options, w workload, url string) []string {
	args := []string{"wrk", fmt.Sprintf("-t%d", o.threads), fmt.Sprintf("-c%d", o.connections),
		fmt.Sprintf("-d%ds", wholeSeconds(o.duration)), "--latency", "--timeout", "5s"}
	if w.close {
		args = append(args, "-H", "Connection: close")
	}
	return append(args, url)
}

// wholeSeconds is d in whole seconds, at least 1: wrk's -d takes no fraction.
func wholeSeconds(d time.Duration) int {
	return max(1, int(d.Round(time.Second)/time.Second))
}

// parseWrk parses wrk's output, such as:
//
//	  Latency Distribution
//	     50%    1.27ms
//	     99%    5.48ms
//	  90613 requests in 2.00s, 11.23MB read
//	  Socket errors: connect 0, read 0, write 0, timeout 0
//	  Non-2xx or 3xx responses: 5
//	Requests/sec:  45212.09
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var seen int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.p50, err = parseWrkDuration(f[1])
			seen |= 1
		case len(f) == 2 && f[0] == "99%":
			r.p99, err = parseWrkDuration(f[1])
			seen |= 2
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			if r.requests, err = strconv.ParseInt(f[0], 10, 64); err == nil {
				r.elapsed, err = parseWrkDuration(strings.TrimSuffix(f[3], ","))
			}
			seen |= 4
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rate, err = strconv.ParseFloat(f[1], 64)
			seen |= 8
		case strings.HasPrefix(line, "Socket errors:"):
			// connect 0, read 0, write 0, timeout 0
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) == 2 {
					n, perr := strconv.ParseInt(kv[1], 10, 64)
					if perr != nil {
						err = perr
					}
					r.errors += n
				}
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			var n int64
			n, err = strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			r.errors += n
		}
		if err != nil {
			return r, fmt.Errorf("wrk output line %q: %w", line, err)
		}
	}
	if seen != 15 {
		return r, fmt.Errorf("wrk output lacks the latency distribution, the request count or Requests/sec:\n%s", out)
	}
	return r, nil
}

// parseWrkDuration parses wrk's durations: 850.00us, 1.27ms, 2.00s, 1.00m.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}, {"h", time.Hour}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}
