// Package admin serves cutover's admin HTTP endpoints: Prometheus metrics,
// liveness and readiness, and the JSON API that shows what the proxy is
// doing. It reads the proxy only through the Config functions, which the
// composition root wires; it imports nothing else of the project.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Config says where the admin server gets what it shows. Nil functions
// turn their endpoints into 404s, except Ready: nil means always ready.
type Config struct {
	// Gatherer is scraped by GET /metrics.
	Gatherer prometheus.Gatherer
	// Ready reports whether the first configuration has been applied.
	Ready func() bool
	// Status returns the state that GET /api/v1/services shows.
	Status func() Status
	// Logger receives errors of the metrics handler.
	Logger zerolog.Logger
	// Deploys serves the deploy endpoints; nil turns them off.
	Deploys Deploys
	// Token authorizes the write endpoints (deploy, rollback). Empty turns
	// them off: they answer 403 and say how to turn them on.
	Token string
	// WebhookTokens authorize POST /hooks/deploy/{service}. None turns
	// webhooks off.
	WebhookTokens []WebhookToken
	// Pprof serves Go's profiles under /debug/pprof/.
	Pprof bool
}

// Status is the document of GET /api/v1/services.
type Status struct {
	Services []Service `json:"services"`
	// Problems are configuration errors whose parts were skipped.
	Problems []Problem `json:"problems"`
	// Providers report each provider's last result.
	Providers []Provider `json:"providers"`
}

// Service is one service in the API.
type Service struct {
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	Protocol  string    `json:"protocol"`
	Balance   string    `json:"balance"`
	Routes    []Route   `json:"routes"`
	Available int       `json:"available"`
	Backends  []Backend `json:"backends"`
}

// Route is a host and path prefix; an empty host matches any host.
type Route struct {
	Host string `json:"host"`
	Path string `json:"path"`
}

// Backend is one backend in the API.
type Backend struct {
	Name        string     `json:"name"`
	Address     string     `json:"address"`
	State       string     `json:"state"`
	Available   bool       `json:"available"`
	Weight      int        `json:"weight"`
	InFlight    int64      `json:"inflight"`
	Requests    uint64     `json:"requests"`
	Failures    uint64     `json:"failures"`
	LatencyMS   float64    `json:"latency_ms"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Why says why the backend is out of rotation; empty when it is not.
	Why string `json:"why,omitempty"`
	// Check is the active health check, when the service has one.
	Check *Check `json:"check,omitempty"`
}

// Check is a backend's active health check.
type Check struct {
	Up bool `json:"up"`
	// Passes and Failures are the consecutive results so far.
	Passes   int `json:"passes"`
	Failures int `json:"failures"`
	// Last is the last probe, if any.
	LastOK    bool       `json:"last_ok"`
	LastError string     `json:"last_error,omitempty"`
	LastAt    *time.Time `json:"last_at,omitempty"`
}

// Problem is a configuration error.
type Problem struct {
	Provider string `json:"provider"`
	Source   string `json:"source,omitempty"`
	Key      string `json:"key,omitempty"`
	Message  string `json:"message"`
}

// Provider is a provider's last report.
type Provider struct {
	Name string `json:"name"`
	// LastError is the error of the last configuration the provider could
	// not use; the one before it stays in effect. Empty when the last
	// report was good.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastGoodAt  *time.Time `json:"last_good_at,omitempty"`
}

// New returns the admin HTTP handler.
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil && !cfg.Ready() {
			text(w, http.StatusServiceUnavailable, "not ready: no configuration applied yet")
			return
		}
		text(w, http.StatusOK, "ready")
	})
	if cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      zerologPrinter{cfg.Logger},
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	if cfg.Status != nil {
		mux.HandleFunc("GET /api/v1/services", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, cfg.Status())
		})
	}
	routeDeploys(mux, cfg)
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type zerologPrinter struct{ log zerolog.Logger }

func (p zerologPrinter) Println(v ...any) {
	p.log.Error().Msgf("metrics: %v", v)
}
