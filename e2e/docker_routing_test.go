package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two labelled containers of one service are routed by host and path within
// a second of docker run (or docker start) returning; an unlabelled
// container is not routed; compose-style scale up and down changes the
// backend set.
func TestDockerRoutesLabelledContainers(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	cl := &http.Client{Timeout: 5 * time.Second}

	host, svc := "web-"+sfx+".test", "web-"+sfx
	labels := dockerLabels("cutover.host", host, "cutover.path", "/api", "cutover.service", svc)
	// The image's HEALTHCHECK stays on, at a short interval: a container
	// is routed once Docker reports it healthy.
	web1 := runTestapp(t, appSpec{Name: "cutover-e2e-web1-" + sfx, Network: network, Labels: labels, Health: "200ms"})
	assertRoutedWithinASecond(t, in, "docker run", host, "/api/one", web1.Name)
	plain := runTestapp(t, appSpec{Name: "cutover-e2e-plain-" + sfx, Network: network})
	web2 := runTestapp(t, appSpec{Name: "cutover-e2e-web2-" + sfx, Network: network, Labels: labels, Health: "200ms"})
	assertRoutedWithinASecond(t, in, "docker run", host, "/api/two", web2.Name)

	// Both serve the route, round robin; other paths and hosts are not it.
	seen := map[string]int{}
	for range 20 {
		code, name, body, err := getVia(cl, in.http, host, "/api/x")
		if err != nil || code != 200 {
			t.Fatalf("GET %s/api/x = %d %q %v", host, code, body, err)
		}
		seen[name]++
	}
	if seen[web1.Name] == 0 || seen[web2.Name] == 0 || len(seen) != 2 {
		t.Errorf("20 GETs were answered by %v, want both %s and %s", seen, web1.Name, web2.Name)
	}
	for _, req := range [][2]string{{host, "/other"}, {"other-" + sfx + ".test", "/api/x"}} {
		if code, _, body, err := getVia(cl, in.http, req[0], req[1]); err != nil || code != 404 {
			t.Errorf("GET %s%s = %d %q %v, want 404: not a route", req[0], req[1], code, body, err)
		}
	}
	doc, err := fetchStatus(in.admin)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := addresses(doc.backends(svc)), ips(web1, web2); !slices.Equal(got, want) {
		t.Errorf("service %s has backends at %v, want %v", svc, got, want)
	}
	if b, ok := doc.backendAt(plain.IP); ok {
		t.Errorf("the unlabelled container %s is routed: %+v", plain.Name, b)
	}

	// Stopped and started again, web1 is routed again within a second of
	// docker start returning.
	web1.stop(2)
	waitBackends(t, in, svc, ips(web2))
	web1.start()
	assertRoutedWithinASecond(t, in, "docker start", host, "/api/again", web1.Name)
	waitBackends(t, in, svc, ips(web1, web2))

	t.Run("compose scale", func(t *testing.T) {
		testComposeScale(t, in, network)
	})
}

// assertRoutedWithinASecond waits until host and path are answered by the
// named container, and fails if that took more than a second from now,
// just after the docker command (what) returned.
func assertRoutedWithinASecond(t *testing.T, in *instance, what, host, path, name string) {
	t.Helper()
	took := waitRouted(t, in.http, host, path, name, 10*time.Second)
	t.Logf("%s routed %s after %s returned", name, took.Round(time.Millisecond), what)
	if took > time.Second {
		t.Errorf("%s was routed %s after %s returned, want within a second", name, took.Round(time.Millisecond), what)
	}
}

// testComposeScale runs three replicas of one compose project and service,
// then removes one, as docker compose up --scale does.
func testComposeScale(t *testing.T, in *instance, network string) {
	sfx := suffix()
	project, host := "proj"+sfx, "scale-"+sfx+".test"
	svc := project + "-app"
	var replicas []*ctr
	for i := 1; i <= 3; i++ {
		replicas = append(replicas, runTestapp(t, appSpec{
			Name:    fmt.Sprintf("%s-app-%d", project, i),
			Network: network,
			Labels: dockerLabels("cutover.host", host,
				"com.docker.compose.project", project,
				"com.docker.compose.service", "app",
				"com.docker.compose.container-number", fmt.Sprint(i)),
		}))
		waitBackends(t, in, svc, ips(replicas...))
	}
	assertServedBy(t, in, host, replicas...)

	gone := replicas[2]
	gone.stop(2)
	docker(t, "rm", gone.Name)
	waitBackends(t, in, svc, ips(replicas[:2]...))
	assertServedBy(t, in, host, replicas[:2]...)
}

// waitBackends waits until the API shows the service with backends at
// exactly want (sorted IPs).
func waitBackends(t testing.TB, in *instance, service string, want []string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		doc, err := fetchStatus(in.admin)
		if err != nil {
			return err
		}
		if got := addresses(doc.backends(service)); !slices.Equal(got, want) {
			return fmt.Errorf("service %s has backends at %v, want %v", service, got, want)
		}
		return nil
	})
}

// assertServedBy sends GETs for host until each of cs has answered, and
// fails on any other answer.
func assertServedBy(t *testing.T, in *instance, host string, cs ...*ctr) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]int{}
	want := map[string]bool{}
	for _, c := range cs {
		want[c.Name] = true
	}
	for i := 0; i < 10*len(cs) && len(seen) < len(cs); i++ {
		code, name, body, err := getVia(cl, in.http, host, "/")
		if err != nil || code != 200 || !want[name] {
			t.Fatalf("GET %s = %d %q %v, want 200 from one of %v", host, code, body, err, want)
		}
		seen[name]++
	}
	if len(seen) != len(cs) {
		t.Errorf("GETs for %s were answered by %v, want each of %v", host, seen, want)
	}
}

// --compat nginx-proxy routes a container that has only VIRTUAL_HOST and
// VIRTUAL_PORT (no cutover.* label); without it, the same container is not
// routed.
func TestDockerCompatNginxProxy(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	sfx := suffix()
	host := "compat-" + sfx + ".test"
	// The app listens on 9090, not on the port its image exposes (8080):
	// only VIRTUAL_PORT says so.
	app := runTestapp(t, appSpec{Name: "cutover-e2e-compat-" + sfx, Network: network,
		Env: map[string]string{"VIRTUAL_HOST": host, "VIRTUAL_PORT": "9090", "TESTAPP_ADDR": ":9090"}})

	in := startDocker(t, "--compat", "nginx-proxy")
	waitRouted(t, in.http, host, "/", app.Name, 10*time.Second)

	// Ready means the first Docker resync was applied.
	plain := startDocker(t)
	cl := &http.Client{Timeout: 5 * time.Second}
	if code, _, body, err := getVia(cl, plain.http, host, "/"); err != nil || code != 404 {
		t.Errorf("without --compat: GET %s = %d %q %v, want 404", host, code, body, err)
	}
}

// A service whose only container is stopped or restarting keeps its route
// and answers 503 (a client retries), never 404 (a client gives up, a
// cache may keep it); it serves again when the container starts.
func TestDockerStoppedServiceAnswers503(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t)
	sfx := suffix()
	cl := &http.Client{Timeout: 5 * time.Second}
	host := "solo-" + sfx + ".test"
	solo := runTestapp(t, appSpec{Name: "cutover-e2e-solo-" + sfx, Network: network, Labels: dockerLabels("cutover.host", host)})
	waitRouted(t, in.http, host, "/", solo.Name, 10*time.Second)
	solo.stop(2)
	eventually(t, 5*time.Second, func() error {
		code, _, body, err := getVia(cl, in.http, host, "/")
		if err != nil || code != 503 || !strings.Contains(body, "no available backend") {
			return fmt.Errorf("GET %s with its container stopped = %d %q %v, want 503", host, code, body, err)
		}
		return nil
	})
	solo.start()
	waitRouted(t, in.http, host, "/", solo.Name, 10*time.Second)
}
