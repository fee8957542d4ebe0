package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// Two containers labelled as one TCP service (cutover.protocol=tcp,
// cutover.tcp.listen, cutover.port on the testapp's TCP echo,
// cutover.tcp.idle-timeout) get a listener of cutover's on the host that
// spreads connections over both; the idle timeout from the label closes a
// quiet connection and keeps one that talks; a container stopped gets no
// more connections.
func TestDockerTCPService(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	in := startDocker(t, "--tcp-host", "127.0.0.1")
	sfx := suffix()
	svc := "echo-" + sfx
	const idle = time.Second
	labels := dockerLabels("cutover.service", svc, "cutover.protocol", "tcp", "cutover.tcp.listen", port,
		"cutover.port", "9000", "cutover.tcp.idle-timeout", idle.String())
	env := map[string]string{"TESTAPP_TCP_ADDR": ":9000"}
	a := runTestapp(t, appSpec{Name: "cutover-e2e-tcp-a-" + sfx, Network: network, Labels: labels, Env: env})
	b := runTestapp(t, appSpec{Name: "cutover-e2e-tcp-b-" + sfx, Network: network, Labels: labels, Env: env})
	addr := "127.0.0.1:" + port

	// Connections go to both.
	eventually(t, 10*time.Second, func() error {
		seen := map[string]int{}
		for range 10 {
			gc, err := dialEchoVia(addr)
			if err != nil {
				return err
			}
			err = gc.roundTrip([]byte("hello"))
			gc.c.Close()
			if err != nil {
				return err
			}
			seen[gc.greeting]++
		}
		if seen[a.Name] == 0 || seen[b.Name] == 0 {
			return fmt.Errorf("10 connections went to %v, want both %s and %s", seen, a.Name, b.Name)
		}
		return nil
	})

	assertIdleTimeout(t, addr, idle)
	if got := metricValue(t, in, "cutover_tcp_idle_closed_total", map[string]string{"service": svc}); got != 1 {
		t.Errorf("cutover_tcp_idle_closed_total = %v, want 1", got)
	}

	// Stopped, b gets no more connections.
	b.stop(2)
	waitBackends(t, in, svc, ips(a))
	for range 10 {
		gc, err := dialEchoVia(addr)
		if err != nil {
			t.Fatalf("a connection after %s stopped: %v", b.Name, err)
		}
		err = gc.roundTrip([]byte("hello"))
		gc.c.Close()
		if err != nil || gc.greeting != a.Name {
			t.Fatalf("a connection after %s stopped went to %q: %v", b.Name, gc.greeting, err)
		}
	}
}
