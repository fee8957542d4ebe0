package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Deploys is what the write endpoints drive: the deploy orchestrator, seen
// through types of this package so that admin imports nothing else of the
// project.
type Deploys interface {
	// Deploy runs a deploy to its end, sending every step to progress as
	// it happens. An error wrapping ErrBusy means another deploy of the
	// service runs; any other error comes with a result.
	Deploy(ctx context.Context, r DeployRequest, progress func(step any)) (result any, err error)
	// Rollback deploys the image the service's containers replaced.
	Rollback(ctx context.Context, r DeployRequest, progress func(step any)) (result any, err error)
	// History lists the known deploys of a service ("" for all).
	History(ctx context.Context, service string) (any, error)
	// Trigger queues a deploy in the background (webhooks).
	Trigger(r DeployRequest)
}

// ErrBusy is wrapped by Deploys errors when a deploy of the service runs.
var ErrBusy = errors.New("a deploy of the service is already running")

// DeployRequest is the body of POST /api/v1/services/{name}/deploy.
type DeployRequest struct {
	Service       string   `json:"-"`
	Image         string   `json:"image"`
	Strategy      string   `json:"strategy,omitempty"`
	Batch         int      `json:"batch,omitempty"`
	DrainTimeout  Duration `json:"drain_timeout,omitempty"`
	HealthTimeout Duration `json:"health_timeout,omitempty"`
	MaxPause      Duration `json:"max_pause,omitempty"`
	// Pull pulls the image even when a copy is present locally.
	Pull    bool   `json:"pull,omitempty"`
	Trigger string `json:"-"`
}

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a duration such as \"30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// Event is one line of the NDJSON stream that a deploy answers with: a
// step while it runs, then the result (and the error, if it failed).
type Event struct {
	Step   any    `json:"step,omitempty"`
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

// routeDeploys adds the deploy endpoints to mux.
func routeDeploys(mux *http.ServeMux, cfg Config) {
	if cfg.Deploys == nil {
		return
	}
	mux.HandleFunc("POST /api/v1/services/{name}/deploy", cfg.authorize(func(w http.ResponseWriter, r *http.Request) {
		runDeploy(w, r, cfg.Deploys.Deploy, "cli")
	}))
	mux.HandleFunc("POST /api/v1/services/{name}/rollback", cfg.authorize(func(w http.ResponseWriter, r *http.Request) {
		runDeploy(w, r, cfg.Deploys.Rollback, "rollback")
	}))
	mux.HandleFunc("GET /api/v1/deploys", func(w http.ResponseWriter, r *http.Request) {
		h, err := cfg.Deploys.History(r.Context(), r.URL.Query().Get("service"))
		if err != nil {
			jsonError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, h)
	})
	mux.HandleFunc("POST /hooks/deploy/{name}", cfg.webhook)
}

// authorize lets a request through when it carries the admin token.
func (cfg Config) authorize(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if cfg.Token == "" {
			jsonError(w, http.StatusForbidden, "write endpoints are off: start cutover with --admin-token (or CUTOVER_ADMIN_TOKEN)")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !equalTokens(got, cfg.Token) {
			jsonError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <the --admin-token>")
			return
		}
		h(w, r)
	}
}

func equalTokens(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// runDeploy answers with an NDJSON stream of the deploy's steps and its
// result. A busy service or a bad request is answered before the stream,
// with 409 or 400.
func runDeploy(w http.ResponseWriter, r *http.Request, run func(context.Context, DeployRequest, func(any)) (any, error), trigger string) {
	var req DeployRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			jsonError(w, http.StatusBadRequest, "request body: "+err.Error())
			return
		}
	}
	req.Service, req.Trigger = r.PathValue("name"), trigger
	if trigger == "cli" && req.Image == "" {
		jsonError(w, http.StatusBadRequest, "request body: image is required, e.g. {\"image\": \"app:v2\"}")
		return
	}
	s := &stream{w: w}
	// The deploy outlives a client that goes away: stopping halfway would
	// leave the service half replaced.
	result, err := run(context.WithoutCancel(r.Context()), req, s.step)
	if !s.started && errors.Is(err, ErrBusy) {
		jsonError(w, http.StatusConflict, err.Error())
		return
	}
	ev := Event{Result: result}
	if err != nil {
		ev.Error = err.Error()
	}
	s.send(ev)
}

// stream writes NDJSON events, flushing each.
type stream struct {
	w       http.ResponseWriter
	started bool
}

func (s *stream) step(v any) { s.send(Event{Step: v}) }

func (s *stream) send(ev Event) {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	b, _ := json.Marshal(ev)
	_, _ = s.w.Write(append(b, '\n'))
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
