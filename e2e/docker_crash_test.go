package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A replica whose process crashes while concurrent GETs run, and that comes
// back (docker start), costs no request: the GETs that find it gone are
// retried on another replica. The crash is a SIGKILL sent to the
// container's process from the host, not docker kill: Docker sees only the
// process die, with no kill event that would drain it first.
func TestDockerCrashAndRestartCostNoRequest(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	host, svc := "crash-"+sfx+".test", "crash-"+sfx
	labels := dockerLabels("cutover.host", host, "cutover.service", svc)
	var replicas []*ctr
	for i := 1; i <= 3; i++ {
		replicas = append(replicas, runTestapp(t, appSpec{Name: fmt.Sprintf("cutover-e2e-crash%d-%s", i, sfx), Network: network, Labels: labels}))
	}
	waitBackends(t, in, svc, ips(replicas...))
	victim := replicas[0]

	// A bounded load: 4 workers, at most 20000 GETs or 20 s.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan *load, 1)
	go func() { done <- runLoad(ctx, in, host, "/?sleep=5ms", 4, 20000) }()
	waitServed(t, victim, 50)
	crash(t, victim)
	waitBackends(t, in, svc, ips(replicas[1:]...))
	time.Sleep(500 * time.Millisecond) // load without it
	victim.start()
	waitBackends(t, in, svc, ips(replicas...))
	waitServed(t, victim, 50)
	cancel()
	l := <-done
	total := l.ok.Load() + l.failed.Load()
	t.Logf("%d requests: %s %d, %s %d, %s %d", total, victim.Name, l.count(victim.Name),
		replicas[1].Name, l.count(replicas[1].Name), replicas[2].Name, l.count(replicas[2].Name))
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed: %v", l.failed.Load(), total, l.failures)
	}
}

// waitServed waits until c has served n more echo requests, counted by the
// app itself.
func waitServed(t *testing.T, c *ctr, n int64) {
	t.Helper()
	var before int64 = -1
	eventually(t, 10*time.Second, func() error {
		got, err := c.requests()
		if err != nil {
			return err
		}
		if before < 0 {
			before = got
		}
		if got < before+n {
			return fmt.Errorf("%s served %d requests, want %d", c.Name, got-before, n)
		}
		return nil
	})
}

// crash kills the container's main process with SIGKILL from the host. It
// skips the test where the process is not visible or not ours to signal
// (a remote or rootless engine), except in CI.
func crash(t *testing.T, c *ctr) {
	t.Helper()
	pid, err := strconv.Atoi(docker(t, "inspect", "-f", "{{.State.Pid}}", c.ID))
	if err == nil && pid > 0 {
		err = syscall.Kill(pid, syscall.SIGKILL)
	} else if err == nil {
		err = fmt.Errorf("%s has no process", c.Name)
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("kill the process of %s: %v", c.Name, err)
	}
	t.Skipf("cannot kill the process of %s from here (remote or rootless engine?): %v", c.Name, err)
}
