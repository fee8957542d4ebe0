package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const h2loadSample = `starting benchmark...
spawning thread #0: 8 total client(s). Timing-based test with 0s of warm-up time and 10s of main duration for measurements.
Application protocol: h2
finished in 10.00s, 15324.50 req/s, 1.78MB/s
requests: 153245 total, 153255 started, 153240 done, 153227 succeeded, 13 failed, 3 errored, 1 timeout
status codes: 153220 2xx, 7 3xx, 4 4xx, 6 5xx
traffic: 17.80MB (18664422) total, 1.35MB (1415180) headers (space savings 95.11%), 14.61MB (15324500) data
                     min         max         mean         sd        +/- sd
time for request:       65us      5.07ms       282us       193us    92.65%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadSample)
	if err != nil {
		t.Fatal(err)
	}
	// failed counts the errored streams (a timeout among them) and the
	// 4xx and 5xx answers: 3 + 4 + 6.
	if r.rate != 15324.50 || r.requests != 153240 || r.errors != 13 {
		t.Errorf("parseH2load = %+v, want 15324.5 req/s, 153240 done, 13 errors", r)
	}
	for _, bad := range []string{
		"connect to 127.0.0.1 port 1 failed: Connection refused\nNo client could be started",
		strings.Replace(h2loadSample, "153240 done", "0 done", 1),
		strings.Replace(h2loadSample, "Application protocol: h2", "Application protocol: http/1.1", 1),
	} {
		if _, err := parseH2load(bad); err == nil {
			t.Errorf("parseH2load accepted %q", bad[:40])
		}
	}
}

func TestH2loadPercentiles(t *testing.T) {
	var sb strings.Builder
	for i := 1; i <= 200; i++ { // durations 1..200 µs, out of order
		d := (i*37)%200 + 1
		sb.WriteString("1795760876946095\t200\t" + strconv.Itoa(d) + "\n")
	}
	path := filepath.Join(t.TempDir(), "h2load.log")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p50, p99, err := h2loadPercentiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if p50 != 100*time.Microsecond || p99 != 198*time.Microsecond {
		t.Errorf("p50 %v, p99 %v; want 100µs, 198µs", p50, p99)
	}
	if err := os.WriteFile(path, []byte("1 200\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h2loadPercentiles(path); err == nil || !strings.Contains(err.Error(), "not start, status, duration") {
		t.Errorf("a short line: err = %v", err)
	}
}

func TestTLSFilesServeTheirCertificate(t *testing.T) {
	tf := testTLSFiles(t)
	for _, pair := range [][2]string{{tf.cert, tf.key}, {tf.bundle, tf.bundle},
		{filepath.Join(tf.certDir, "default.crt"), filepath.Join(tf.certDir, "default.key")}} {
		c, err := tls.LoadX509KeyPair(pair[0], pair[1])
		if err != nil {
			t.Fatalf("%s with %s: %v", pair[0], pair[1], err)
		}
		if len(c.Leaf.IPAddresses) != 1 || !c.Leaf.IPAddresses[0].Equal([]byte{127, 0, 0, 1}) {
			t.Errorf("%s names %v, want 127.0.0.1", pair[0], c.Leaf.IPAddresses)
		}
	}
}
