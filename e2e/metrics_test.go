package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics.
func scrape(t *testing.T, in *instance) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metricValue returns the value of the series of name with exactly the
// given labels, or -1 when there is none.
func metricValue(t *testing.T, in *instance, name string, labels map[string]string) float64 {
	t.Helper()
	fam := scrape(t, in)[name]
	if fam == nil {
		return -1
	}
	for _, m := range fam.Metric {
		if !labelsEqual(m.Label, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func labelsEqual(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

func TestMetricsAfterKnownRequests(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	gone := freeAddr(t)
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: metrics.test
    backends: [%s, %s]
  half:
    host: half.test
    backends: [%s, %s]
`, a.addr(), b.addr(), a.addr(), gone))
	c := &http.Client{Timeout: 5 * time.Second}
	for range 10 {
		in.get(c, "metrics.test", "/")
	}
	for range 4 {
		req, _ := http.NewRequest("POST", in.http+"/", nil)
		req.Host = "metrics.test"
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	for range 3 {
		in.get(c, "unknown.test", "/")
	}
	for range 6 {
		if code, _, err := in.get(c, "half.test", "/"); code != 200 {
			t.Fatalf("half.test: %d %v", code, err)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"cutover_requests_total", map[string]string{"service": "web", "code": "200", "method": "GET"}, 10},
		{"cutover_requests_total", map[string]string{"service": "web", "code": "200", "method": "POST"}, 4},
		{"cutover_requests_total", map[string]string{"service": "", "code": "404", "method": "GET"}, 3},
		{"cutover_requests_total", map[string]string{"service": "half", "code": "200", "method": "GET"}, 6},
		{"cutover_request_duration_seconds", map[string]string{"service": "web"}, 14},
		{"cutover_backend_up", map[string]string{"service": "web", "backend": a.addr()}, 1},
		{"cutover_backend_up", map[string]string{"service": "web", "backend": b.addr()}, 1},
		{"cutover_backend_inflight", map[string]string{"service": "web", "backend": a.addr()}, 0},
		{"cutover_retries_total", map[string]string{"service": "web", "reason": "connect"}, 0},
		{"cutover_config_reloads_total", map[string]string{"provider": "file", "result": "success"}, 1},
	}
	for _, c := range checks {
		if got := metricValue(t, in, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every request to half that picked the refusing backend first was
	// retried once; round robin makes that about every other one.
	if got := metricValue(t, in, "cutover_retries_total", map[string]string{"service": "half", "reason": "connect"}); got < 1 || got > 6 {
		t.Errorf("cutover_retries_total{service=half,reason=connect} = %v, want 1 to 6", got)
	}
	fams := scrape(t, in)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}

	// Removing a service and a backend deletes their series.
	in.writeConfig(fmt.Sprintf(`
services:
  web:
    host: metrics.test
    backends: [%s]
`, a.addr()))
	eventually(t, 5*time.Second, func() error {
		if v := metricValue(t, in, "cutover_backend_up", map[string]string{"service": "web", "backend": b.addr()}); v != -1 {
			return fmt.Errorf("backend b still has cutover_backend_up = %v", v)
		}
		return nil
	})
	for _, name := range []string{"cutover_requests_total", "cutover_request_duration_seconds", "cutover_retries_total"} {
		for _, m := range scrape(t, in)[name].GetMetric() {
			for _, l := range m.Label {
				if l.GetName() == "service" && l.GetValue() == "half" {
					t.Errorf("%s still has a series of the removed service half", name)
				}
			}
		}
	}
}
