package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A container with bad labels keeps its valid route, every other container
// keeps working, and each error shows in the log (once), the metric and the
// API.
func TestDockerBadLabelKeepsTheRest(t *testing.T) {
	buildImages(t)
	network := newNetwork(t)
	in := startDocker(t, "--resync", "1s")
	sfx := suffix()
	goodHost, badHost, otherHost := "good-"+sfx+".test", "bad-"+sfx+".test", "other-"+sfx+".test"
	// A has a valid route (good), a route with a bad port (bad) and a
	// misspelt key; B is valid.
	a := runTestapp(t, appSpec{Name: "cutover-e2e-bad-a-" + sfx, Network: network, Labels: map[string]string{
		"cutover.enable":           "true",
		"cutover.hots":             "typo-" + sfx + ".test",
		"cutover.routes.good.host": goodHost,
		"cutover.routes.good.port": testappPort,
		"cutover.routes.bad.host":  badHost,
		"cutover.routes.bad.port":  "notaport",
	}})
	waitRouted(t, in.http, goodHost, "/", a.Name, 10*time.Second)
	b := runTestapp(t, appSpec{Name: "cutover-e2e-bad-b-" + sfx, Network: network,
		Labels: dockerLabels("cutover.host", otherHost)})
	waitRouted(t, in.http, otherHost, "/", b.Name, 10*time.Second)

	cl := &http.Client{Timeout: 5 * time.Second}
	for _, h := range []string{badHost, "typo-" + sfx + ".test"} {
		if code, _, body, err := getVia(cl, in.http, h, "/"); err != nil || code != 404 {
			t.Errorf("GET %s = %d %q %v, want 404: the route is invalid", h, code, body, err)
		}
	}

	badKeys := []string{"cutover.routes.bad.port", "cutover.hots"}
	eventually(t, 5*time.Second, func() error {
		doc, err := fetchStatus(in.admin)
		if err != nil {
			return err
		}
		got := doc.problemsOf(a.Name)
		for _, k := range badKeys {
			if _, ok := got[k]; !ok {
				return fmt.Errorf("API problems of %s: %v, want one for %s", a.Name, got, k)
			}
		}
		if p := doc.problemsOf(b.Name); len(p) != 0 {
			return fmt.Errorf("API problems of the valid container %s: %v, want none", b.Name, p)
		}
		return nil
	})
	if v := metricValue(t, in, "cutover_label_errors", map[string]string{"container": a.Name}); v < 1 {
		t.Errorf("cutover_label_errors{container=%q} = %v, want ≥ 1", a.Name, v)
	}
	if v := metricValue(t, in, "cutover_label_errors", map[string]string{"container": b.Name}); v > 0 {
		t.Errorf("cutover_label_errors{container=%q} = %v, want none", b.Name, v)
	}

	// Several resyncs later (--resync 1s), each error was logged once.
	time.Sleep(2500 * time.Millisecond) // lets resyncs happen; nothing is waited for
	for _, k := range badKeys {
		n := in.countLogs(func(l map[string]any) bool {
			msg, _ := l["message"].(string)
			return strings.HasPrefix(msg, "configuration problem: ") && l["key"] == k &&
				strings.Contains(fmt.Sprint(l["source"]), a.Name)
		})
		if n != 1 {
			t.Errorf("%d warnings for %s of %s, want exactly 1; logs:\n%s", n, k, a.Name, in.logText())
		}
	}
	code, name, body, err := getVia(cl, in.http, goodHost, "/")
	if err != nil || code != 200 || name != a.Name {
		t.Errorf("after resyncs: GET %s = %d %q %v, want 200 from %s", goodHost, code, body, err, a.Name)
	}

	// Gone with its container, the errors leave the API and the gauge.
	a.remove()
	eventually(t, 5*time.Second, func() error {
		doc, err := fetchStatus(in.admin)
		if err != nil {
			return err
		}
		if p := doc.problemsOf(a.Name); len(p) != 0 {
			return fmt.Errorf("API problems of the removed %s: %v", a.Name, p)
		}
		if v := metricValue(t, in, "cutover_label_errors", map[string]string{"container": a.Name}); v > 0 {
			return fmt.Errorf("cutover_label_errors{container=%q} = %v after its removal, want no series or 0", a.Name, v)
		}
		return nil
	})
	if code, name, body, err := getVia(cl, in.http, otherHost, "/"); err != nil || code != 200 || name != b.Name {
		t.Errorf("GET %s = %d %q %v, want 200 from %s", otherHost, code, body, err, b.Name)
	}
}

// countLogs returns the number of log lines that match accepts.
func (in *instance) countLogs(match func(map[string]any) bool) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, l := range in.logs {
		if match(l) {
			n++
		}
	}
	return n
}
