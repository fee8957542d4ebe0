package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// h2specKnownFailures are the h2spec cases that cutover fails, by
// "package: case". Each is a choice of Go's HTTP/2 server, which cutover
// uses as it is:
var h2specKnownFailures = map[string]string{
	// Go hangs up on a SETTINGS frame that repeats a parameter
	// (PROTOCOL_ERROR), a guard against CPU exhaustion by huge SETTINGS
	// frames; RFC 9113 says to apply repeated values in order.
	"http2/6.5.3: Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE": "go",
	// Go answers a request with a connection-specific header (Connection,
	// Keep-Alive, Upgrade, …) or a TE other than "trailers" with a 400
	// response rather than a stream error. Such a request is refused
	// either way, before it reaches cutover's handler or a backend.
	"http2/8.1.2.2: Sends a HEADERS frame that contains the connection-specific header field":                     "go",
	`http2/8.1.2.2: Sends a HEADERS frame that contains the TE header field with any value other than "trailers"`: "go",
}

// h2cKnownFailures are the further cases that cleartext HTTP/2 fails.
var h2cKnownFailures = map[string]string{
	// The HTTP listener serves HTTP/1.1 too: a connection that does not
	// start with the HTTP/2 preface is read as HTTP/1.1 and answered with
	// 400, not with an HTTP/2 GOAWAY.
	"http2/3.5: Sends invalid connection preface": "h1",
}

// TestH2Spec runs the h2spec conformance suite against the HTTPS listener
// (and, with --h2c, the HTTP listener) in front of a simple backend. Every
// failing case must be a known one. h2spec must be installed in CI (see
// .ci/run); elsewhere the test is skipped without it.
func TestH2Spec(t *testing.T) {
	h2spec := findH2Spec(t)
	ca := newTestCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "default", 1, "127.0.0.1", "localhost")
	// A body of a few frames' worth: the flow-control cases need more
	// than a handful of bytes to withhold.
	body := strings.Repeat("h2spec\n", 1000)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, body)
	}))
	defer backend.Close()
	in, addr := startTLS(t, fmt.Sprintf(`
services:
  web:
    backends: [%s]
`, backend.Listener.Addr()), dir, "--h2c")
	t.Run("tls", func(t *testing.T) {
		runH2Spec(t, h2spec, addr, true, h2specKnownFailures)
	})
	t.Run("h2c", func(t *testing.T) {
		known := map[string]string{}
		for k, v := range h2specKnownFailures {
			known[k] = v
		}
		for k, v := range h2cKnownFailures {
			known[k] = v
		}
		runH2Spec(t, h2spec, strings.TrimPrefix(in.http, "http://"), false, known)
	})
}

func findH2Spec(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.Split(strings.TrimSpace(string(out)), string(os.PathListSeparator))[0], "bin", "h2spec")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	skipOrFail(t, "h2spec is not installed (.ci/run installs it with go install)")
	return ""
}

// runH2Spec runs h2spec against addr and checks its failures.
func runH2Spec(t *testing.T, h2spec, addr string, useTLS bool, known map[string]string) {
	host, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	args := []string{"-h", host, "-p", port, "-j", report}
	if useTLS {
		args = append(args, "-t", "-k")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// h2spec exits 1 when a case fails: the report tells which.
	out, err := exec.CommandContext(ctx, h2spec, args...).CombinedOutput()
	summary := lastLine(string(out))
	if _, statErr := os.Stat(report); statErr != nil {
		t.Fatalf("h2spec %s: %v, no report\n%s", strings.Join(args, " "), err, out)
	}
	total, failed := readH2SpecReport(t, report)
	t.Logf("h2spec %s: %s", strings.Join(args, " "), summary)
	if total < 140 {
		t.Errorf("h2spec ran %d cases, want the whole suite (145)", total)
	}
	for _, f := range failed {
		if known[f] == "" {
			t.Errorf("h2spec case failed and is not a known failure: %s", f)
		}
	}
	for k := range known {
		if !slices.Contains(failed, k) {
			t.Logf("known failure passes now (update the README's score): %s", k)
		}
	}
	if t.Failed() {
		t.Logf("h2spec output:\n%s", out)
	}
}

// readH2SpecReport returns the number of cases in h2spec's JUnit report
// and the failed ones, as "package: case".
func readH2SpecReport(t *testing.T, path string) (int, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Package string    `xml:"package,attr"`
				Name    string    `xml:"classname,attr"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	total := 0
	var failed []string
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			total++
			if c.Error != nil || c.Failure != nil {
				failed = append(failed, c.Package+": "+c.Name)
			}
			if c.Skipped != nil {
				t.Logf("h2spec skipped %s: %s", c.Package, c.Name)
			}
		}
	}
	slices.Sort(failed)
	return total, failed
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
