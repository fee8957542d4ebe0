package main

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/admin"
	"github.com/cutoverproxy/cutover/discovery"
)

// reports keeps each provider's last result for the admin API, counts
// reloads and logs each one once.
type reports struct {
	log     zerolog.Logger
	reloads *prometheus.CounterVec

	mu    sync.Mutex
	state map[string]*admin.Provider
	order []string
}

func newReports(log zerolog.Logger, reg prometheus.Registerer, providers []discovery.Provider) *reports {
	r := &reports{
		log: log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_config_reloads_total",
			Help: "Configurations reported by providers, by result: success (applied) or failure (rejected; the last good one stays).",
		}, []string{"provider", "result"}),
		state: map[string]*admin.Provider{},
	}
	reg.MustRegister(r.reloads)
	for _, p := range providers {
		r.state[p.Name()] = &admin.Provider{Name: p.Name()}
		r.order = append(r.order, p.Name())
		r.reloads.WithLabelValues(p.Name(), "success")
		r.reloads.WithLabelValues(p.Name(), "failure")
	}
	return r
}

// report is the merger's OnReport hook.
func (r *reports) report(provider string, err error) {
	now := time.Now()
	r.mu.Lock()
	st := r.state[provider]
	first := st.LastGoodAt == nil || st.LastError != ""
	if err == nil {
		st.LastError, st.LastErrorAt, st.LastGoodAt = "", nil, &now
	} else {
		st.LastError, st.LastErrorAt = err.Error(), &now
	}
	r.mu.Unlock()
	if err != nil {
		r.reloads.WithLabelValues(provider, "failure").Inc()
		r.log.Error().Err(err).Str("provider", provider).Msg("configuration rejected; the last good one stays in effect")
		return
	}
	r.reloads.WithLabelValues(provider, "success").Inc()
	// Log the first good configuration and the recovery from a bad one;
	// the routine ones (every Docker event) only at debug level.
	e := r.log.Debug()
	if first {
		e = r.log.Info()
	}
	e.Str("provider", provider).Msg("configuration loaded")
}

func (r *reports) providers() []admin.Provider {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]admin.Provider, 0, len(r.order))
	for _, name := range r.order {
		out = append(out, *r.state[name])
	}
	return out
}
