package deploy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the deploy counters. Their labels are bounded: only deploys
// of services that had containers are counted, and strategy is one of
// three values.
type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deploys_total",
			Help: "Deploys that ran to their end, by service, strategy and result (succeeded, failed, rolled-back).",
		}, []string{"service", "strategy", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_deploy_duration_seconds",
			Help:    "Time from the start of a deploy to its end, rollback included.",
			Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
		}, []string{"service", "strategy"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.total, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register deploy metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(res Result) {
	m.total.WithLabelValues(res.Service, string(res.Strategy), res.Outcome).Inc()
	m.duration.WithLabelValues(res.Service, string(res.Strategy)).Observe(res.Duration.Seconds())
}
