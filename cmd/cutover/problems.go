package main

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/discovery"
)

// problemLog logs each configuration problem once, when it appears, and
// keeps cutover_label_errors in step with the problems in effect.
type problemLog struct {
	log    zerolog.Logger
	gauge  *prometheus.GaugeVec
	active map[discovery.Problem]bool
}

func newProblemLog(log zerolog.Logger, reg prometheus.Registerer) *problemLog {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cutover_label_errors",
		Help: "Label errors in effect per container: its other valid routes are served; the details are in the log and GET /api/v1/services.",
	}, []string{"container"})
	reg.MustRegister(g)
	return &problemLog{log: log, gauge: g, active: map[discovery.Problem]bool{}}
}

// observe is called with the problems of every applied snapshot.
func (l *problemLog) observe(problems []discovery.Problem) {
	next := make(map[discovery.Problem]bool, len(problems))
	perContainer := map[string]float64{}
	for _, p := range problems {
		next[p] = true
		if !l.active[p] {
			l.log.Warn().Str("provider", p.Provider).Str("source", p.Source).Str("key", p.Key).
				Msg("configuration problem: " + p.Message)
		}
		if name, ok := strings.CutPrefix(p.Source, "container "); ok {
			perContainer[name]++
		}
	}
	for p := range l.active {
		if !next[p] {
			l.log.Info().Str("provider", p.Provider).Str("source", p.Source).Str("key", p.Key).Msg("configuration problem resolved")
		}
	}
	l.active = next
	l.gauge.Reset()
	for name, n := range perContainer {
		l.gauge.WithLabelValues(name).Set(n)
	}
}
