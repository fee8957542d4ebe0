package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTool returns the path of a program the test needs. Without it the
// test is skipped, except in CI (CI=true), where it fails: CI installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; .ci/run installs it", name)
	}
	t.Skipf("%s is not installed (apt-get install %s); skipping", name, name)
	return ""
}

// A real Prometheus server scrapes the admin endpoint and sees the request
// counts.
func TestPrometheusScrapes(t *testing.T) {
	prom := requireTool(t, "prometheus")
	a := newBackend(t, "a")
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: prom.test
    backends: [%s]
`, a.addr()))
	c := &http.Client{Timeout: 5 * time.Second}
	for range 7 {
		if code, _, err := in.get(c, "prom.test", "/"); code != 200 {
			t.Fatalf("request: %d %v", code, err)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	target := strings.TrimPrefix(in.admin, "http://")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: cutover
    static_configs: [{targets: ["%s"]}]
`, target)), 0o644); err != nil {
		t.Fatal(err)
	}
	web := freeAddr(t)
	cmd := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	out, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(out.Name())
			t.Logf("prometheus log:\n%s", log)
		}
	}()
	query := `cutover_requests_total{service="web",code="200",method="GET"}`
	eventually(t, 30*time.Second, func() error {
		v, err := promQuery(web, query)
		if err != nil {
			return err
		}
		if v != "7" {
			return fmt.Errorf("%s = %q, want 7", query, v)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		v, err := promQuery(web, `up{job="cutover"}`)
		if err != nil || v != "1" {
			return fmt.Errorf("up = %q %v", v, err)
		}
		return nil
	})
}

// promQuery runs an instant query and returns the value of its only
// sample.
func promQuery(addr, q string) (string, error) {
	res, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var doc struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		return "", err
	}
	if len(doc.Data.Result) != 1 {
		return "", fmt.Errorf("query %s: %d samples", q, len(doc.Data.Result))
	}
	return fmt.Sprint(doc.Data.Result[0].Value[1]), nil
}
