package main

import (
	"log"
	"strings"

	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/admin"
	"github.com/cutoverproxy/cutover/proxy"
)

// status converts the proxy's table into the admin API's document.
func status(t *proxy.Table, r *reports) admin.Status {
	st := admin.Status{Services: []admin.Service{}, Problems: []admin.Problem{}, Providers: r.providers()}
	for _, svc := range t.Services() {
		cfg := svc.Config()
		s := admin.Service{
			Name:      svc.Name(),
			Provider:  cfg.Provider,
			Protocol:  cfg.Options.Protocol.String(),
			Balance:   cfg.Options.Balance.String(),
			Routes:    []admin.Route{},
			Available: svc.Available(),
			Backends:  []admin.Backend{},
		}
		for _, rt := range cfg.Routes {
			s.Routes = append(s.Routes, admin.Route{Host: rt.Host, Path: rt.Path})
		}
		for _, b := range svc.Backends() {
			s.Backends = append(s.Backends, backendStatus(b))
		}
		st.Services = append(st.Services, s)
	}
	for _, p := range t.Snapshot().Problems {
		st.Problems = append(st.Problems, admin.Problem{Provider: p.Provider, Source: p.Source, Key: p.Key, Message: p.Message})
	}
	return st
}

// tcpStatus adds the TCP listeners that could not be opened to the
// problems.
func tcpStatus(px *proxy.Proxy, st admin.Status) admin.Status {
	for _, l := range px.TCPListeners() {
		if l.Err != nil {
			st.Problems = append(st.Problems, admin.Problem{Provider: "tcp", Source: "service " + l.Service,
				Key: "tcp.listen", Message: l.Err.Error()})
		}
	}
	return st
}

func backendStatus(b *proxy.Backend) admin.Backend {
	out := admin.Backend{
		Name:      b.Name(),
		Address:   b.Address(),
		State:     b.State(),
		Available: b.Available(),
		Weight:    b.Weight(),
		InFlight:  b.InFlight(),
		Requests:  b.Requests(),
		Failures:  b.Failures(),
		LatencyMS: float64(b.Latency().Microseconds()) / 1000,
	}
	if at, msg := b.LastError(); msg != "" {
		out.LastError, out.LastErrorAt = msg, &at
	}
	out.Why = b.Why()
	if st, ok := b.Check(); ok {
		c := &admin.Check{Up: st.Up, Passes: st.Passes, Failures: st.Failures}
		if st.HasLast {
			at := st.Last.At
			c.LastOK, c.LastAt = st.Last.OK, &at
			if st.Last.Err != nil {
				c.LastError = st.Last.Err.Error()
			}
		}
		out.Check = c
	}
	return out
}

// serverErrorLog routes net/http's server errors (TLS handshakes, bad
// requests it rejects itself) to the logger at debug level.
func serverErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(debugWriter{l.With().Str("component", "http").Logger()}, "", 0)
}

type debugWriter struct{ log zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
