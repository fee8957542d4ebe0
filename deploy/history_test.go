package deploy

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestHistory(t *testing.T) {
	f, d, _ := setup(t, 2, Config{})
	ctx := context.Background()
	first, _, err := deploy(t, d, Request{Service: "web", Image: "app:v2", Trigger: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	failed, _, _ := deploy(t, d, Request{Service: "web", Image: "app:v9", Trigger: "cli"})
	h, err := d.History(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].ID != failed.ID || h[1].ID != first.ID || h[1].Strategy != Rolling || h[1].Duration == 0 || h[0].Outcome != Failed {
		t.Errorf("history = %+v", h)
	}
	// After a restart, the labels tell the deploy that made the containers.
	restarted, err := New(Config{Engine: f, Traffic: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range []string{"web", ""} {
		h, err = restarted.History(ctx, service)
		if err != nil {
			t.Fatal(err)
		}
		want := Result{ID: first.ID, Service: "web", Image: "app:v2", Previous: "app:v1", Outcome: Succeeded,
			Started: first.Started.Truncate(time.Second)}
		if len(h) != 1 || h[0] != want {
			t.Errorf("History(%q) after a restart = %+v, want %+v", service, h, want)
		}
	}
	if h, _ := restarted.History(ctx, "api"); len(h) != 0 {
		t.Errorf("history of another service = %+v", h)
	}
}

func TestHistoryBounded(t *testing.T) {
	_, d, _ := setup(t, 0, Config{})
	for range historySize + 5 {
		_, _ = d.Deploy(context.Background(), Request{Service: "web", Image: "app:v2"}, nil)
	}
	h, err := d.History(context.Background(), "")
	if err != nil || len(h) != historySize {
		t.Errorf("%d results, %v", len(h), err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f, d, _ := setup(t, 1, Config{Registerer: reg})
	f.addImage("app:v3", v3ID, "3")
	f.bad[v3ID] = true
	ctx := context.Background()
	_, _ = d.Deploy(ctx, Request{Service: "web", Image: "app:v2"}, nil)
	_, _ = d.Deploy(ctx, Request{Service: "web", Image: "app:v3", HealthTimeout: time.Millisecond}, nil)
	_, _ = d.Deploy(ctx, Request{Service: "web", Image: "app:v9"}, nil)
	_, _ = d.Deploy(ctx, Request{Service: "web", Image: "app:v1", Strategy: Recreate}, nil)
	_, _ = d.Deploy(ctx, Request{Service: "nothing", Image: "app:v1"}, nil) // not counted
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var observed uint64
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			switch fam.GetName() {
			case "cutover_deploys_total":
				counts[labels(m)] = m.GetCounter().GetValue()
			case "cutover_deploy_duration_seconds":
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{
		"result=succeeded,service=web,strategy=rolling":   1,
		"result=rolled-back,service=web,strategy=rolling": 1,
		"result=failed,service=web,strategy=rolling":      1,
		"result=succeeded,service=web,strategy=recreate":  1,
	}
	if len(counts) != len(want) {
		t.Errorf("counts = %v", counts)
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("cutover_deploys_total{%s} = %v, want %v", k, counts[k], v)
		}
	}
	if observed != 4 {
		t.Errorf("%d durations observed, want 4", observed)
	}
	if _, err := New(Config{Engine: f, Traffic: f, Registerer: reg}); err == nil {
		t.Errorf("registering twice should fail")
	}
}

func labels(m *dto.Metric) string {
	s := ""
	for _, l := range m.GetLabel() {
		if s != "" {
			s += ","
		}
		s += l.GetName() + "=" + l.GetValue()
	}
	return s
}
