package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cutover runs as the sidecar container built from the Dockerfile, with
// the Docker socket mounted read-only and its ports published on
// 127.0.0.1: it routes a labelled container on its network, and reports,
// without routing it, one on a network it is not attached to.
func TestDockerSidecar(t *testing.T) {
	buildImages(t)
	appNet, otherNet := newNetwork(t), newNetwork(t)
	sfx := suffix()
	proxyName := "cutover-e2e-sidecar-" + sfx
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", containerLogs(proxyName))
		}
		if _, err := dockerErr("rm", "-f", proxyName); err != nil && !strings.Contains(err.Error(), "No such container") {
			t.Errorf("remove container: %v", err)
		}
	})
	docker(t, "run", "-d", "--name", proxyName, "--label", testLabel, "--network", appNet,
		"-v", "/var/run/docker.sock:/var/run/docker.sock:ro",
		"-p", "127.0.0.1::80", "-p", "127.0.0.1::8081",
		cutoverImage, "run", "--docker=true", "--log-level", "debug")
	base := "http://" + publishedAddr(t, proxyName, "80/tcp")
	admin := "http://" + publishedAddr(t, proxyName, "8081/tcp")
	eventually(t, 20*time.Second, func() error {
		res, err := http.Get(admin + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("GET /readyz: %s", res.Status)
		}
		return nil
	})

	host, farHost := "sidecar-"+sfx+".test", "far-"+sfx+".test"
	app := runTestapp(t, appSpec{Name: "cutover-e2e-near-" + sfx, Network: appNet, Labels: dockerLabels("cutover.host", host)})
	waitRouted(t, base, host, "/", app.Name, 10*time.Second)

	far := runTestapp(t, appSpec{Name: "cutover-e2e-far-" + sfx, Network: otherNet, Labels: dockerLabels("cutover.host", farHost)})
	eventually(t, 10*time.Second, func() error {
		doc, err := fetchStatus(admin)
		if err != nil {
			return err
		}
		if p := doc.problemsOf(far.Name); len(p) == 0 {
			return fmt.Errorf("no API problem names %s, which is on a network cutover is not on", far.Name)
		}
		return nil
	})
	doc, err := fetchStatus(admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("problems of %s: %v", far.Name, doc.problemsOf(far.Name))
	if b, ok := doc.backendAt(far.IP); ok {
		t.Errorf("%s, on a network cutover is not on, is routed: %+v", far.Name, b)
	}
	cl := &http.Client{Timeout: 5 * time.Second}
	if code, name, body, err := getVia(cl, base, farHost, "/"); err == nil && code == 200 {
		t.Errorf("GET %s = %d %q (from %s), want no answer from the unreachable container", farHost, code, body, name)
	}
	// The reachable one is still served.
	if code, name, body, err := getVia(cl, base, host, "/"); err != nil || code != 200 || name != app.Name {
		t.Errorf("GET %s = %d %q %v, want 200 from %s", host, code, body, err, app.Name)
	}
}

// publishedAddr returns the 127.0.0.1 address that docker publishes the
// container's port on.
func publishedAddr(t *testing.T, container, port string) string {
	t.Helper()
	out := docker(t, "port", container, port)
	for line := range strings.Lines(out) {
		if addr := strings.TrimSpace(line); strings.HasPrefix(addr, "127.0.0.1:") {
			return addr
		}
	}
	t.Fatalf("docker port %s %s = %q: not published on 127.0.0.1", container, port, out)
	return ""
}
