package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// docker stop of one of three replicas while concurrent GETs run costs no
// request, and the stopped one gets no request once it is draining. Its app
// ignores SIGTERM, so it would keep serving until docker stop's SIGKILL:
// only cutover's reaction to the kill event keeps requests away from it.
func TestDockerStopCostsNoRequest(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	host, svc := "stop-"+sfx+".test", "stop-"+sfx
	labels := dockerLabels("cutover.host", host, "cutover.service", svc)
	var replicas []*ctr
	for i := 1; i <= 3; i++ {
		spec := appSpec{Name: fmt.Sprintf("cutover-e2e-stop%d-%s", i, sfx), Network: network, Labels: labels}
		if i == 2 {
			spec.Env = map[string]string{"TESTAPP_IGNORE_SIGTERM": "true"}
		}
		replicas = append(replicas, runTestapp(t, spec))
	}
	waitBackends(t, in, svc, ips(replicas...))
	assertServedBy(t, in, host, replicas...)
	victim := replicas[1]
	before, err := victim.requests()
	if err != nil {
		t.Fatal(err)
	}

	// A bounded load: 4 workers, at most 20000 GETs or 20 s; it ends
	// when cancel is called, a second after docker stop returned.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan *load, 1)
	go func() { done <- runLoad(ctx, in, host, "/?sleep=5ms", 4, 20000) }()
	eventually(t, 10*time.Second, func() error {
		n, err := victim.requests()
		if err != nil || n < before+50 {
			return fmt.Errorf("%s served %d requests of the load (%v), want 50", victim.Name, n-before, err)
		}
		return nil
	})

	stopped := victim.stopAsync(3)
	issued := time.Now()
	eventually(t, 2*time.Second, func() error {
		doc, err := fetchStatus(in.admin)
		if err != nil {
			return err
		}
		if b, ok := doc.backendAt(victim.IP); !ok || b.State != "draining" {
			return fmt.Errorf("backend of %s: %+v (present: %t), want state draining", victim.Name, b, ok)
		}
		return nil
	})
	t.Logf("%s draining %s after docker stop was issued", victim.Name, time.Since(issued).Round(time.Millisecond))
	n1, err := victim.requests()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // a window of load, not a wait for a condition
	n2, err := victim.requests()
	if err != nil {
		t.Fatalf("%s stopped serving before docker stop's SIGKILL: %v", victim.Name, err)
	}
	if ctx.Err() != nil || len(done) != 0 {
		t.Fatal("the load ended before the window closed; make it longer")
	}
	if n2 != n1 {
		t.Errorf("%s served %d requests while draining (%d → %d), want none", victim.Name, n2-n1, n1, n2)
	}

	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("docker stop -t 3 did not return within 15s")
	}
	time.Sleep(time.Second) // more load after the container died
	cancel()
	l := <-done
	total := l.ok.Load() + l.failed.Load()
	t.Logf("%d requests: %s %d, %s %d, %s %d", total, replicas[0].Name, l.count(replicas[0].Name),
		victim.Name, l.count(victim.Name), replicas[2].Name, l.count(replicas[2].Name))
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed: %v", l.failed.Load(), total, l.failures)
	}
	if l.count(replicas[0].Name) == 0 || l.count(replicas[2].Name) == 0 {
		t.Errorf("the load was answered by %s %d and %s %d times, want both > 0",
			replicas[0].Name, l.count(replicas[0].Name), replicas[2].Name, l.count(replicas[2].Name))
	}
	waitBackends(t, in, svc, ips(replicas[0], replicas[2]))
}
