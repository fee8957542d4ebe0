package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary is the cutover binary that TestMain builds.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cutover")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/cutover")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cutover:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is a running cutover process.
type instance struct {
	t         testing.TB
	cmd       *exec.Cmd
	http      string // base URL of the HTTP listener
	admin     string // base URL of the admin listener
	config    string // path of the YAML file
	mu        sync.Mutex
	logs      []map[string]any
	logLines  chan map[string]any
	exited    chan struct{}
	exitError error
}

// start runs cutover with a config file holding yaml and waits until it is
// ready.
func start(t testing.TB, yaml string, extraArgs ...string) *instance {
	t.Helper()
	return startEnv(t, nil, yaml, extraArgs...)
}

// startEnv is start with env (KEY=value) added to cutover's environment.
// An empty yaml runs cutover without a configuration file.
func startEnv(t testing.TB, env []string, yaml string, extraArgs ...string) *instance {
	t.Helper()
	dir := t.TempDir()
	in := &instance{t: t, config: filepath.Join(dir, "cutover.yaml"), logLines: make(chan map[string]any, 1024), exited: make(chan struct{})}
	args := []string{"run", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "debug", "--docker=false"}
	if yaml != "" {
		if err := os.WriteFile(in.config, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", in.config)
	}
	args = append(args, extraArgs...)
	in.cmd = exec.Command(binary, args...)
	in.cmd.Env = append(append(os.Environ(), "GORACE=halt_on_error=1"), env...)
	stderr, err := in.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go in.readLogs(stderr)
	go func() {
		in.exitError = in.cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(in.stop)
	started := in.waitLog(10*time.Second, func(l map[string]any) bool { return l["message"] == "cutover started" })
	in.http = "http://" + started["http"].(string)
	in.admin = "http://" + started["admin"].(string)
	in.waitReady()
	return in
}

func (in *instance) readLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			l = map[string]any{"message": "non-JSON output", "raw": sc.Text()}
		}
		in.mu.Lock()
		in.logs = append(in.logs, l)
		in.mu.Unlock()
		select {
		case in.logLines <- l:
		default:
		}
	}
	close(in.logLines)
}

// waitLog waits for a log line that match accepts, in the lines logged so
// far and those to come.
func (in *instance) waitLog(timeout time.Duration, match func(map[string]any) bool) map[string]any {
	in.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		in.mu.Lock()
		for _, l := range in.logs {
			if match(l) {
				in.mu.Unlock()
				return l
			}
		}
		in.mu.Unlock()
		select {
		case <-in.logLines:
		case <-in.exited:
			in.t.Fatalf("cutover exited: %v\nlogs:\n%s", in.exitError, in.logText())
		case <-time.After(50 * time.Millisecond):
		}
	}
	in.t.Fatalf("no matching log line within %s; logs:\n%s", timeout, in.logText())
	return nil
}

func (in *instance) logText() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var b strings.Builder
	for _, l := range in.logs {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// hasLog reports whether a log line matching match was logged.
func (in *instance) hasLog(match func(map[string]any) bool) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, l := range in.logs {
		if match(l) {
			return true
		}
	}
	return false
}

func (in *instance) waitReady() {
	in.t.Helper()
	eventually(in.t, 10*time.Second, func() error {
		res, err := http.Get(in.admin + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("readyz: %s", res.Status)
		}
		return nil
	})
}

// writeConfig replaces the config file the way editors do: write a temp
// file and rename it over the old one.
func (in *instance) writeConfig(yaml string) {
	in.t.Helper()
	tmp := in.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		in.t.Fatal(err)
	}
	if err := os.Rename(tmp, in.config); err != nil {
		in.t.Fatal(err)
	}
}

func (in *instance) signal(sig syscall.Signal) {
	in.t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		in.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (in *instance) wait(timeout time.Duration) int {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(timeout):
		in.t.Fatalf("cutover did not exit within %s", timeout)
	}
	return in.cmd.ProcessState.ExitCode()
}

func (in *instance) stop() {
	select {
	case <-in.exited:
	default:
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(10 * time.Second):
			_ = in.cmd.Process.Kill()
			<-in.exited
		}
	}
	if in.t.Failed() {
		in.t.Logf("cutover logs:\n%s", in.logText())
	}
	if in.hasLog(func(l map[string]any) bool { return strings.Contains(fmt.Sprint(l["raw"]), "DATA RACE") }) {
		in.t.Errorf("the race detector fired in cutover:\n%s", in.logText())
	}
}

// get sends a GET with the given Host through the proxy.
func (in *instance) get(c *http.Client, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", in.http+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// backend is an HTTP server on 127.0.0.1 that answers with its name.
type backend struct {
	*httptest.Server
	name     string
	requests atomic.Int64
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
		}
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return b.Listener.Addr().String() }

// eventually retries f until it succeeds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load sends GETs from workers goroutines until stop is closed or max
// requests were sent, and counts the results.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	byBackend  sync.Map // name → *atomic.Int64
}

func runLoad(ctx context.Context, in *instance, host, path string, workers, max int) *load {
	l := &load{}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil && sent.Add(1) <= int64(max) {
				code, body, err := in.get(c, host, path)
				if err != nil || code != 200 {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprintf("%d %q %v", code, body, err))
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
				name, _, _ := strings.Cut(body, " ")
				v, _ := l.byBackend.LoadOrStore(name, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	return l
}

func (l *load) count(name string) int64 {
	v, ok := l.byBackend.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// freeAddr returns a 127.0.0.1 address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
