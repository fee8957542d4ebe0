package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The Docker event stream is cut (by a proxy in front of the Docker socket)
// and restored: routes stay served throughout, and the changes made while
// it was cut (a container started, another removed) take effect after
// cutover reconnects and resyncs.
func TestDockerEventStreamCut(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	px := newSockProxy(t, engineSocket(t))
	in := startEnv(t, []string{"DOCKER_HOST=unix://" + px.path}, "", "--docker=true")
	sfx := suffix()
	host1, host2, host3 := "cut1-"+sfx+".test", "cut2-"+sfx+".test", "cut3-"+sfx+".test"
	c1 := runTestapp(t, appSpec{Name: "cutover-e2e-cut1-" + sfx, Network: network, Labels: dockerLabels("cutover.host", host1)})
	c3 := runTestapp(t, appSpec{Name: "cutover-e2e-cut3-" + sfx, Network: network, Labels: dockerLabels("cutover.host", host3)})
	waitRouted(t, in.http, host1, "/", c1.Name, 10*time.Second)
	waitRouted(t, in.http, host3, "/", c3.Name, 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	traffic := steadyGets(ctx, in.http, host1, c1.Name, 20*time.Millisecond, 1500)

	px.cut()
	cutAt := time.Now()
	in.waitLog(5*time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["message"]), "docker connection lost")
	})
	// While cut: c2 starts, c3 is removed.
	c2 := runTestapp(t, appSpec{Name: "cutover-e2e-cut2-" + sfx, Network: network, Labels: dockerLabels("cutover.host", host2)})
	c3.remove()
	time.Sleep(3*time.Second - time.Since(cutAt)) // the outage, not a wait for a condition
	cl := &http.Client{Timeout: 5 * time.Second}
	if code, _, body, err := getVia(cl, in.http, host2, "/"); err != nil || code != 404 {
		t.Errorf("during the cut: GET %s = %d %q %v, want 404: cutover cannot know of %s yet", host2, code, body, err, c2.Name)
	}
	refused := px.restore()
	t.Logf("the socket proxy refused %d connections during the cut", refused)
	if refused == 0 {
		t.Errorf("cutover did not try to reconnect during the 3 s cut")
	}

	took := waitRouted(t, in.http, host2, "/", c2.Name, 15*time.Second)
	t.Logf("%s routed %s after the socket was restored", c2.Name, took.Round(time.Millisecond))
	in.waitLog(5*time.Second, func(l map[string]any) bool { return l["message"] == "docker reconnected and resynced" })
	eventually(t, 5*time.Second, func() error {
		// A removed container's routes answer 503 for a minute (its
		// successor may be on the way), not 404.
		if code, _, body, err := getVia(cl, in.http, host3, "/"); err != nil || code != 503 {
			return fmt.Errorf("after the resync: GET %s = %d %q %v, want 503: %s was removed during the cut", host3, code, body, err, c3.Name)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // a little traffic after the reconnect
	cancel()
	res := <-traffic
	t.Logf("%d GETs to %s during the cut and after: %d failed", res.ok+res.failed, host1, res.failed)
	if res.failed != 0 || res.ok == 0 {
		t.Errorf("%d of %d GETs to %s failed during the cut, want none: %v", res.failed, res.ok+res.failed, host1, res.failures)
	}
}

// engineSocket is the path of the Docker socket the tests' engine answers
// on.
func engineSocket(t *testing.T) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		return "/var/run/docker.sock"
	}
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("DOCKER_HOST=%s: the socket proxy of this test needs a unix socket", host)
	}
	return path
}

// gets is the result of steadyGets.
type gets struct {
	ok, failed int
	failures   []string
}

// steadyGets sends one GET every interval, at most max, until ctx ends,
// and expects each to be answered by name. The result arrives on the
// returned channel.
func steadyGets(ctx context.Context, base, host, name string, interval time.Duration, max int) <-chan gets {
	out := make(chan gets, 1)
	go func() {
		var r gets
		cl := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; i < max && ctx.Err() == nil; i++ {
			code, got, body, err := getVia(cl, base, host, "/")
			if err != nil || code != 200 || got != name {
				r.failed++
				r.failures = append(r.failures, fmt.Sprintf("%s: %d %q %v", time.Now().Format("15:04:05.000"), code, body, err))
			} else {
				r.ok++
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		out <- r
	}()
	return out
}

// sockProxy forwards the connections made to a unix socket to the engine's
// socket. It can cut every connection and refuse new ones (accept and close
// at once) until restored.
type sockProxy struct {
	path, target string
	ln           net.Listener
	wg           sync.WaitGroup
	refused      atomic.Int64

	mu     sync.Mutex
	cutNow bool
	conns  map[net.Conn]struct{}
}

func newSockProxy(t *testing.T, target string) *sockProxy {
	t.Helper()
	p := &sockProxy{path: filepath.Join(t.TempDir(), "docker.sock"), target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *sockProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			p.refused.Add(1)
			c.Close()
			continue
		}
		p.wg.Go(func() { p.pipe(c) })
	}
}

// track adds c to the open connections, unless the proxy is cut.
func (p *sockProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutNow {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *sockProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// pipe copies between the client c and a new connection to the engine
// until either side closes.
func (p *sockProxy) pipe(c net.Conn) {
	defer p.untrack(c)
	up, err := net.DialTimeout("unix", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(up, c)
		up.Close()
	})
	_, _ = io.Copy(c, up)
	c.Close()
	wg.Wait()
}

// cut closes every connection and refuses new ones until restore.
func (p *sockProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutNow = true
	for c := range p.conns {
		c.Close()
	}
}

// restore accepts connections again and returns how many were refused
// since the cut.
func (p *sockProxy) restore() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutNow = false
	return p.refused.Swap(0)
}

func (p *sockProxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}
