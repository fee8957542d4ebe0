package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutoverproxy/cutover/admin"
	"github.com/cutoverproxy/cutover/deploy"
)

// deploysAdapter serves the admin API's deploy endpoints with the deploy
// orchestrator.
type deploysAdapter struct{ d *deploy.Deployer }

func request(r admin.DeployRequest) deploy.Request {
	return deploy.Request{
		Service: r.Service, Image: r.Image, Strategy: deploy.Strategy(r.Strategy), Batch: r.Batch,
		DrainTimeout: time.Duration(r.DrainTimeout), HealthTimeout: time.Duration(r.HealthTimeout),
		MaxPause: time.Duration(r.MaxPause), Pull: r.Pull, Trigger: r.Trigger,
	}
}

func (a deploysAdapter) Deploy(ctx context.Context, r admin.DeployRequest, progress func(any)) (any, error) {
	res, err := a.d.Deploy(ctx, request(r), func(s deploy.Step) { progress(s) })
	return result(res), busy(err)
}

func (a deploysAdapter) Rollback(ctx context.Context, r admin.DeployRequest, progress func(any)) (any, error) {
	res, err := a.d.Rollback(ctx, request(r), func(s deploy.Step) { progress(s) })
	return result(res), busy(err)
}

func (a deploysAdapter) History(ctx context.Context, service string) (any, error) {
	h, err := a.d.History(ctx, service)
	if h == nil {
		h = []deploy.Result{}
	}
	return h, err
}

func (a deploysAdapter) Trigger(r admin.DeployRequest) { a.d.Trigger(request(r)) }

// result is nil for a deploy that never started (refused at once).
func result(r deploy.Result) any {
	if r.ID == "" {
		return nil
	}
	return r
}

// busy marks the orchestrator's "already running" for the admin API.
func busy(err error) error {
	if errors.Is(err, deploy.ErrBusy) {
		return busyError{err}
	}
	return err
}

type busyError struct{ err error }

func (e busyError) Error() string        { return e.err.Error() }
func (e busyError) Is(target error) bool { return target == admin.ErrBusy }

// webhookTokens is the repeatable --webhook-token flag: TOKEN allows
// webhooks of every service, SERVICE=TOKEN of one. The environment
// variable takes a comma-separated list.
type webhookTokens []admin.WebhookToken

func (w *webhookTokens) String() string {
	if w == nil || len(*w) == 0 {
		return ""
	}
	return fmt.Sprintf("%d tokens", len(*w))
}

func (w *webhookTokens) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		t := admin.WebhookToken{Token: part}
		if svc, tok, ok := strings.Cut(part, "="); ok {
			t = admin.WebhookToken{Service: svc, Token: tok}
		}
		if t.Token == "" {
			return fmt.Errorf("%q: want TOKEN or SERVICE=TOKEN", part)
		}
		*w = append(*w, t)
	}
	return nil
}
