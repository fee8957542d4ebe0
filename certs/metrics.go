package certs

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descProblems = prometheus.NewDesc("cutover_tls_certificate_problems",
		"Certificate names in the certificate directory whose files cannot be used; the certificate they had before, if any, is still served. Details in the log and GET /api/v1/services.",
		nil, nil)
	descExpiry = prometheus.NewDesc("cutover_tls_certificate_expiry_timestamp_seconds",
		"When each certificate in service expires (its NotAfter), by certificate name.",
		[]string{"cert"}, nil)
	descReloads = prometheus.NewDesc("cutover_tls_certificate_reloads_total",
		"Reloads of the certificate directory: success, or failure when problems were left.",
		[]string{"result"}, nil)
)

// collector produces the store's metrics from its current state at scrape
// time, so the series of a removed certificate go with it.
type collector struct{ s *Store }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descProblems
	ch <- descExpiry
	ch <- descReloads
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.state.Load()
	ch <- prometheus.MustNewConstMetric(descProblems, prometheus.GaugeValue, float64(len(st.problems)))
	for _, name := range st.names {
		na := st.entries[name].cert.Leaf.NotAfter
		ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue, float64(na.Unix()), name)
	}
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(c.s.reloads[reloadSuccess].Load()), "success")
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(c.s.reloads[reloadFailure].Load()), "failure")
}
