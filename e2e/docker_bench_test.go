package e2e

import (
	"fmt"
	"testing"
	"time"
)

// Each iteration of these benchmarks creates a container: run them with a
// small count, e.g. -benchtime 5x. The cutover binary is the race-enabled
// one that TestMain builds, so the figures are upper bounds.

// BenchmarkDockerStartToRouted measures the time from just before docker
// run to the first request that the new container answers through cutover;
// ms/docker-run is the part of it that docker run itself takes.
func BenchmarkDockerStartToRouted(b *testing.B) {
	buildImages(b)
	network := newNetwork(b)
	in := startDocker(b)
	for _, health := range []string{"", "200ms"} {
		name := "healthcheck=none"
		if health != "" {
			name = "healthcheck=" + health
		}
		b.Run(name, func(b *testing.B) {
			sfx := suffix()
			host := "bench-start-" + sfx + ".test"
			var total, run time.Duration
			for i := range b.N {
				s := appSpec{Name: fmt.Sprintf("cutover-e2e-bstart-%s-%d", sfx, i), Network: network,
					Labels: dockerLabels("cutover.host", host), Health: health}
				c := &ctr{t: b, Name: s.Name}
				b.Cleanup(c.remove)
				begin := time.Now()
				docker(b, runArgs(s)...)
				run += time.Since(begin)
				waitRouted(b, in.http, host, "/", s.Name, 20*time.Second)
				total += time.Since(begin)
				b.StopTimer()
				c.remove()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start-to-routed")
			b.ReportMetric(float64(run.Microseconds())/1000/float64(b.N), "ms/docker-run")
		})
	}
}

// BenchmarkDockerStopToDrained measures the time from docker stop being
// issued to the API showing the container's backend draining or gone. The
// app ignores SIGTERM, so only the kill event can drain it that fast.
func BenchmarkDockerStopToDrained(b *testing.B) {
	buildImages(b)
	network := newNetwork(b)
	in := startDocker(b)
	sfx := suffix()
	host := "bench-stop-" + sfx + ".test"
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		c := runTestapp(b, appSpec{Name: fmt.Sprintf("cutover-e2e-bstop-%s-%d", sfx, i), Network: network,
			Labels: dockerLabels("cutover.host", host), Env: map[string]string{"TESTAPP_IGNORE_SIGTERM": "true"}})
		waitRouted(b, in.http, host, "/", c.Name, 20*time.Second)
		b.StartTimer()
		begin := time.Now()
		stopped := c.stopAsync(10)
		waitDrained(b, in.admin, c.IP, 10*time.Second)
		total += time.Since(begin)
		b.StopTimer()
		c.remove() // SIGKILL: docker stop returns
		<-stopped
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/stop-to-drained")
}

// waitDrained polls the API at admin until no available backend is dialled
// at ip.
func waitDrained(t testing.TB, admin, ip string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		doc, err := fetchStatus(admin)
		if err == nil {
			if b, ok := doc.backendAt(ip); !ok || b.State == "draining" || b.State == "removed" {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the backend at %s was not drained within %s", ip, timeout)
}
