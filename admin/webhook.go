package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// hubPush is the part of a Docker Hub push webhook that names the image:
// {"push_data": {"tag": "v2"}, "repository": {"repo_name": "org/app"}}.
type hubPush struct {
	PushData struct {
		Tag string `json:"tag"`
	} `json:"push_data"`
	Repository struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
}

// webhook is POST /hooks/deploy/{service}: it queues a deploy of the
// pushed image (or, without a payload, of the service's current image
// reference) and answers 202 at once. Deploys requested while one runs
// are coalesced: the newest waits, older waiting ones are dropped.
func (cfg Config) webhook(w http.ResponseWriter, r *http.Request) {
	service := r.PathValue("name")
	if len(cfg.WebhookTokens) == 0 {
		jsonError(w, http.StatusForbidden, "webhooks are off: start cutover with --webhook-token")
		return
	}
	if !cfg.webhookAllowed(service, webhookToken(r)) {
		jsonError(w, http.StatusUnauthorized, "missing or wrong token: send ?token=<token>, X-Cutover-Token or Authorization: Bearer")
		return
	}
	// A push means the registry has a newer image, whatever is local.
	req := DeployRequest{Service: service, Trigger: "webhook", Pull: true}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "request body: "+err.Error())
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		var push hubPush
		if err := json.Unmarshal(body, &push); err != nil {
			jsonError(w, http.StatusBadRequest, "request body: want a Docker Hub push payload: "+err.Error())
			return
		}
		if push.Repository.RepoName != "" {
			req.Image = push.Repository.RepoName
			if push.PushData.Tag != "" {
				req.Image += ":" + push.PushData.Tag
			}
		}
	}
	cfg.Deploys.Trigger(req)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"service": service, "image": req.Image, "status": "queued"})
}

func webhookToken(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	if t := r.Header.Get("X-Cutover-Token"); t != "" {
		return t
	}
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return t
}

// webhookAllowed accepts the service's own token or a global one.
func (cfg Config) webhookAllowed(service, token string) bool {
	if token == "" {
		return false
	}
	for _, t := range cfg.WebhookTokens {
		if (t.Service == "" || t.Service == service) && equalTokens(token, t.Token) {
			return true
		}
	}
	return false
}

// WebhookToken allows webhooks of one service, or of all when Service is
// empty.
type WebhookToken struct {
	Service string
	Token   string
}
