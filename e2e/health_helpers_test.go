package e2e

// Helpers of the health tests (health_*_test.go): services with an active
// check, testapp's control endpoints, backend states from the admin API,
// the health log lines, and a bounded load of GETs and POSTs that times
// every request.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// healthLabels are the labels of a routed testapp of service svc at host,
// with an HTTP check of /healthz and the health keys in kv (without the
// cutover.health. prefix), e.g. "interval", "500ms".
func healthLabels(host, svc string, kv ...string) map[string]string {
	l := dockerLabels("cutover.host", host, "cutover.service", svc, "cutover.health.path", "/healthz")
	for i := 0; i+1 < len(kv); i += 2 {
		l["cutover.health."+kv[i]] = kv[i+1]
	}
	return l
}

// replicas runs n testapps named cutover-e2e-<prefix><i>-<sfx> (i from 1)
// with the given labels, and no Docker HEALTHCHECK: cutover's probe alone
// gates them.
func replicas(t *testing.T, network, prefix, sfx string, n int, labels map[string]string) []*ctr {
	t.Helper()
	var cs []*ctr
	for i := 1; i <= n; i++ {
		cs = append(cs, runTestapp(t, appSpec{Name: fmt.Sprintf("cutover-e2e-%s%d-%s", prefix, i, sfx), Network: network, Labels: labels}))
	}
	return cs
}

// control switches a testapp control (healthy, fail, hang, flap) by a
// direct request to the container, not through the proxy.
func control(t *testing.T, c *ctr, what string, on bool) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	res, err := cl.Post(fmt.Sprintf("http://%s:%s/control/%s?v=%t", c.IP, testappPort, what, on), "", nil)
	if err != nil {
		t.Fatalf("switch %s of %s: %v", what, c.Name, err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("switch %s of %s: %s", what, c.Name, res.Status)
	}
}

// served reads c's count of echo requests, failing the test if it cannot.
func served(t *testing.T, c *ctr) int64 {
	t.Helper()
	n, err := c.requests()
	if err != nil {
		t.Fatalf("read /stats of %s: %v", c.Name, err)
	}
	return n
}

// backendName is the name cutover gives the backend of a testapp: the
// container name and port.
func backendName(c *ctr) string { return c.Name + ":" + testappPort }

// stateOf returns the API state of the backend of c, or "absent".
func stateOf(in *instance, c *ctr) (string, error) {
	doc, err := fetchStatus(in.admin)
	if err != nil {
		return "", err
	}
	b, ok := doc.backendAt(c.IP)
	if !ok {
		return "absent", nil
	}
	return b.State, nil
}

// waitState waits until the backend of c is in state, and returns how
// long that took.
func waitState(t *testing.T, in *instance, c *ctr, state string, timeout time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	eventually(t, timeout, func() error {
		got, err := stateOf(in, c)
		if err != nil {
			return err
		}
		if got != state {
			return fmt.Errorf("backend %s is %q, want %q", backendName(c), got, state)
		}
		return nil
	})
	return time.Since(begin)
}

// isHealthLog returns a log matcher of the lines of the given message
// prefix ("backend up", "backend down", "backend ejected", "backend back
// from ejection") about c's backend.
func isHealthLog(c *ctr, prefix string) func(map[string]any) bool {
	name := backendName(c)
	return func(l map[string]any) bool {
		return l["backend"] == name && strings.HasPrefix(fmt.Sprint(l["message"]), prefix+":")
	}
}

// waitNthLog waits until n lines match and returns the n-th.
func waitNthLog(t *testing.T, in *instance, n int, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var nth map[string]any
	eventually(t, timeout, func() error {
		in.mu.Lock()
		defer in.mu.Unlock()
		k := 0
		for _, l := range in.logs {
			if match(l) {
				if k++; k == n {
					nth = l
					return nil
				}
			}
		}
		return fmt.Errorf("%d matching log lines, want %d", k, n)
	})
	return nth
}

// healthLogs returns the up/down/ejection log lines about c, for failure
// messages.
func healthLogs(in *instance, c *ctr) []string {
	name := backendName(c)
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, l := range in.logs {
		if l["backend"] == name && strings.HasPrefix(fmt.Sprint(l["message"]), "backend ") {
			out = append(out, fmt.Sprint(l["message"]))
		}
	}
	return out
}

// trafficSpec shapes a bounded load: GET and POST workers, each sending
// one request at a time, until the context ends or Max requests were sent.
type trafficSpec struct {
	Host        string
	GetWorkers  int
	PostWorkers int
	Max         int           // requests in all
	Path        string        // of every request, e.g. "/?sleep=5ms"
	PostBody    int           // bytes of each POST's body
	Pause       time.Duration // between two requests of a worker
	Slow        time.Duration // requests that take this long are counted as slow
}

// tally counts the outcomes of one method's requests.
type tally struct {
	ok, failed, slow atomic.Int64
	mu               sync.Mutex
	failures         []string
	slowOnes         []string
	byBackend        map[string]int64
}

func (ta *tally) record(name string, took time.Duration, failure string, slow time.Duration) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if slow > 0 && took >= slow {
		ta.slow.Add(1)
		one := fmt.Sprintf("%s, answered by %q", took.Round(time.Millisecond), name)
		if failure != "" {
			one = fmt.Sprintf("%s, failed: %s", took.Round(time.Millisecond), failure)
		}
		ta.slowOnes = append(ta.slowOnes, one)
	}
	if failure != "" {
		ta.failed.Add(1)
		if len(ta.failures) < 20 {
			ta.failures = append(ta.failures, failure)
		}
		return
	}
	ta.ok.Add(1)
	if ta.byBackend == nil {
		ta.byBackend = map[string]int64{}
	}
	ta.byBackend[name]++
}

func (ta *tally) count(c *ctr) int64 {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.byBackend[c.Name]
}

func (ta *tally) String() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	names := make([]string, 0, len(ta.byBackend))
	for n := range ta.byBackend {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d ok, %d failed, %d slow; by backend:", ta.ok.Load(), ta.failed.Load(), ta.slow.Load())
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%d", n, ta.byBackend[n])
	}
	return b.String()
}

// traffic is a running load; wait returns its tallies once it ended.
type traffic struct {
	gets, posts tally
	sent        atomic.Int64
	done        chan struct{}
	cancel      context.CancelFunc
}

// startTraffic starts the load of spec against cutover at base; it stops
// at timeout, at spec.Max requests, at stop, or when the test ends.
func startTraffic(t *testing.T, base string, spec trafficSpec, timeout time.Duration) *traffic {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	tr := &traffic{done: make(chan struct{}), cancel: cancel}
	t.Cleanup(tr.stop)
	transport := &http.Transport{MaxIdleConnsPerHost: spec.GetWorkers + spec.PostWorkers, DisableCompression: true}
	cl := &http.Client{Timeout: 15 * time.Second, Transport: transport}
	body := bytes.Repeat([]byte("b"), spec.PostBody)
	var wg sync.WaitGroup
	worker := func(method string, ta *tally) {
		for ctx.Err() == nil && tr.sent.Add(1) <= int64(spec.Max) {
			name, took, failure := once(cl, base, spec, method, body)
			ta.record(name, took, failure, spec.Slow)
			if spec.Pause > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(spec.Pause):
				}
			}
		}
	}
	for range spec.GetWorkers {
		wg.Go(func() { worker(http.MethodGet, &tr.gets) })
	}
	for range spec.PostWorkers {
		wg.Go(func() { worker(http.MethodPost, &tr.posts) })
	}
	go func() {
		wg.Wait()
		transport.CloseIdleConnections()
		cancel()
		close(tr.done)
	}()
	return tr
}

// once sends one request and returns the name of the app that answered,
// how long it took, and what was wrong with it, if anything.
func once(cl *http.Client, base string, spec trafficSpec, method string, body []byte) (string, time.Duration, string) {
	var rd io.Reader
	if method == http.MethodPost {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+spec.Path, rd)
	if err != nil {
		return "", 0, err.Error()
	}
	req.Host = spec.Host
	begin := time.Now()
	res, err := cl.Do(req)
	if err != nil {
		return "", time.Since(begin), fmt.Sprintf("%s: %v", method, err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(res.Body)
	res.Body.Close()
	took := time.Since(begin)
	name, _, _ := strings.Cut(buf.String(), " ")
	switch {
	case err != nil:
		return name, took, fmt.Sprintf("%s: %d, body cut: %v", method, res.StatusCode, err)
	case res.StatusCode != 200:
		return name, took, fmt.Sprintf("%s: %d %q", method, res.StatusCode, strings.TrimSpace(buf.String()))
	case method == http.MethodPost && res.Header.Get("X-Body-Bytes") != strconv.Itoa(len(body)):
		return name, took, fmt.Sprintf("POST: the app got %s of %d body bytes", res.Header.Get("X-Body-Bytes"), len(body))
	}
	return name, took, ""
}

// stop ends the load and waits for it.
func (tr *traffic) stop() {
	tr.cancel()
	<-tr.done
}

// total is the number of requests answered so far, ok or not.
func (tr *traffic) total() int64 {
	return tr.gets.ok.Load() + tr.gets.failed.Load() + tr.posts.ok.Load() + tr.posts.failed.Load()
}

// stable checks that c serves no request while load runs for d: its
// request count must not change. It returns the count.
func stable(t *testing.T, c *ctr, tr *traffic, d time.Duration) int64 {
	t.Helper()
	before, sentBefore := served(t, c), tr.total()
	time.Sleep(d) // the window observed, not a wait for a condition
	after, sentAfter := served(t, c), tr.total()
	if after != before {
		t.Errorf("%s served %d requests during %s of load, want none", c.Name, after-before, d)
	}
	if sentAfter-sentBefore < 10 {
		t.Errorf("only %d requests were answered during %s: the window shows nothing", sentAfter-sentBefore, d)
	}
	return after
}
