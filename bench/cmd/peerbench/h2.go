package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The HTTP/2 load: h2load with few connections, each carrying several
// streams at once, as browsers and gRPC clients do.
const (
	h2Connections = 16
	h2Streams     = 10
)

// tlsFiles is the benchmark's self-signed certificate for 127.0.0.1, in
// the shapes the proxies read.
type tlsFiles struct {
	cert, key string // PEM files
	bundle    string // certificate then key (HAProxy)
	certDir   string // default.crt and default.key (cutover's --cert-dir)
}

// makeTLSFiles writes a fresh ECDSA P-256 key and a self-signed
// certificate for 127.0.0.1 and localhost under dir.
func makeTLSFiles(dir string) (tlsFiles, error) {
	f := tlsFiles{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"),
		bundle: filepath.Join(dir, "bundle.pem"), certDir: filepath.Join(dir, "certs")}
	if err := os.MkdirAll(f.certDir, 0o755); err != nil {
		return f, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "peerbench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return f, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return f, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for path, b := range map[string][]byte{
		f.cert: certPEM, f.key: keyPEM, f.bundle: append(slices.Clone(certPEM), keyPEM...),
		filepath.Join(f.certDir, "default.crt"): certPEM, filepath.Join(f.certDir, "default.key"): keyPEM,
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

// h2loadArgs returns h2load's command line for the HTTP/2 workload,
// logging every request's time to logFile.
func h2loadArgs(o options, url, logFile string) []string {
	args := []string{"h2load", fmt.Sprintf("-t%d", min(o.threads, h2Connections)), fmt.Sprintf("-c%d", h2Connections),
		fmt.Sprintf("-m%d", h2Streams), fmt.Sprintf("-D%d", wholeSeconds(o.duration))}
	if logFile != "" {
		args = append(args, "--log-file="+logFile)
	}
	return append(args, url)
}

var (
	h2Finished = regexp.MustCompile(`(?m)^finished in [^,]+, ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Protocol = regexp.MustCompile(`(?m)^Application protocol: (\S+)`)
)

// parseH2load parses h2load's summary:
//
//	finished in 10.00s, 15324.50 req/s, 1.78MB/s
//	requests: 153245 total, 153255 started, 153245 done, 153245 succeeded, 0 failed, 0 errored, 0 timeout
//	status codes: 153245 2xx, 0 3xx, 0 4xx, 0 5xx
//
// after "Application protocol: h2".
// Errors are h2load's failed requests, which already count the errored
// and timed-out ones and the 4xx and 5xx answers (as wrk's errors count
// socket errors and answers other than 2xx and 3xx). A run that did not
// speak HTTP/2 (ALPN chose http/1.1) is an error. Its latency figures
// have no percentiles: those come from the log file (h2loadPercentiles).
func parseH2load(out string) (wrkResult, error) {
	fin := h2Finished.FindStringSubmatch(out)
	req := h2Requests.FindStringSubmatch(out)
	if fin == nil || req == nil {
		return wrkResult{}, fmt.Errorf("h2load output without its summary:\n%s", lastLines(out, 15))
	}
	if proto := h2Protocol.FindStringSubmatch(out); proto == nil || proto[1] != "h2" {
		return wrkResult{}, fmt.Errorf("h2load did not speak HTTP/2 (%q):\n%s", proto, lastLines(out, 15))
	}
	var r wrkResult
	r.rate, _ = strconv.ParseFloat(fin[1], 64)
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	r.requests = n(req[2])
	r.errors = n(req[4])
	if r.requests == 0 {
		return r, fmt.Errorf("h2load finished no request:\n%s", lastLines(out, 15))
	}
	return r, nil
}

// h2loadPercentiles reads h2load's log file (one line per request:
// start time µs, status, duration µs) and returns the median and 99th
// percentile of the durations.
func h2loadPercentiles(path string) (p50, p99 time.Duration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	var us []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			return 0, 0, fmt.Errorf("%s: line %q is not start, status, duration", path, sc.Text())
		}
		d, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: duration %q: %w", path, fields[2], err)
		}
		us = append(us, d)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if len(us) == 0 {
		return 0, 0, fmt.Errorf("%s: no request logged", path)
	}
	slices.Sort(us)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(us)))) - 1
		return time.Duration(us[max(0, i)] * float64(time.Microsecond))
	}
	return at(0.50), at(0.99), nil
}
