package e2e

// The steady load that runs through the proxy during every deploy test:
// a few workers, each sending one GET at a time, that count every failed
// request and the versions that answered.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Shape of the steady load that runs during every deploy.
const (
	loadWorkers = 4
	loadPause   = 5 * time.Millisecond
	loadMax     = 100000
	loadTimeout = 90 * time.Second
)

// versionLoad is a steady, bounded load of GETs through the proxy: each
// answer must be a 200 with an X-Version; anything else, a transport
// error included, is a failure.
type versionLoad struct {
	ok, failed atomic.Int64
	sent       atomic.Int64
	mu         sync.Mutex
	failures   []string
	versions   map[string]int64
	backends   map[string]int64
	slowest    time.Duration
	slowestAt  time.Time // when the slowest request was sent
	done       chan struct{}
	cancel     context.CancelFunc
}

// startLoad starts loadWorkers workers that send GET / for the service,
// each one at a time with loadPause between two, until stop is called,
// loadMax requests were sent or loadTimeout passed.
func (s *appService) startLoad() *versionLoad {
	t := s.e.t
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	l := &versionLoad{versions: map[string]int64{}, backends: map[string]int64{}, done: make(chan struct{}), cancel: cancel}
	t.Cleanup(l.stop)
	transport := &http.Transport{MaxIdleConnsPerHost: loadWorkers, DisableCompression: true}
	cl := &http.Client{Timeout: 15 * time.Second, Transport: transport}
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for ctx.Err() == nil && l.sent.Add(1) <= loadMax {
				l.once(s, cl)
				select {
				case <-ctx.Done():
				case <-time.After(loadPause):
				}
			}
		})
	}
	go func() {
		wg.Wait()
		transport.CloseIdleConnections()
		cancel()
		close(l.done)
	}()
	s.warm(l)
	return l
}

// warm waits until the load got 50 answers.
func (s *appService) warm(l *versionLoad) {
	s.e.t.Helper()
	eventually(s.e.t, 10*time.Second, func() error {
		if n := l.ok.Load() + l.failed.Load(); n < 50 {
			return fmt.Errorf("only %d requests of the load were answered", n)
		}
		return nil
	})
}

// once sends one request (not bound to the load's context: stopping the
// load lets the requests in flight finish) and records its outcome.
func (l *versionLoad) once(s *appService, cl *http.Client) {
	begin := time.Now()
	res, body, err := s.get(cl, "/")
	took := time.Since(begin)
	failure := ""
	switch {
	case err != nil:
		failure = err.Error()
	case res.StatusCode != 200:
		failure = fmt.Sprintf("%s %q", res.Status, strings.TrimSpace(body))
	case res.Header.Get("X-Version") == "":
		failure = fmt.Sprintf("200 without X-Version: %q", body)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if took > l.slowest {
		l.slowest, l.slowestAt = took, begin
	}
	if failure != "" {
		l.failed.Add(1)
		if len(l.failures) < 20 {
			l.failures = append(l.failures, fmt.Sprintf("%s after %s: %s", begin.Format("15:04:05.000"), took.Round(time.Millisecond), failure))
		}
		return
	}
	l.ok.Add(1)
	l.versions[res.Header.Get("X-Version")]++
	l.backends[res.Header.Get("X-Backend")]++
}

// stop ends the load and waits for the requests in flight.
func (l *versionLoad) stop() {
	l.cancel()
	<-l.done
}

// finish lets the load run for a moment more (the requests right after a
// deploy count too), stops it and fails the test on any failed request.
func (l *versionLoad) finish(t *testing.T) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // a window of load after the deploy, not a wait for a condition
	l.stop()
	t.Logf("load: %s", l)
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the deploy; first ones:\n%s", l.failed.Load(), l.ok.Load()+l.failed.Load(), strings.Join(l.failures, "\n"))
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load shows nothing", l.ok.Load())
	}
}

// count returns how many answers came from version.
func (l *versionLoad) count(version string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions[version]
}

func (l *versionLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d ok, %d failed; by version %v; %d backends; slowest %s (sent %s)", l.ok.Load(), l.failed.Load(),
		l.versions, len(l.backends), l.slowest.Round(time.Millisecond), l.slowestAt.Format("15:04:05.000"))
}
