package deploy

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// History returns the deploys known for the service ("" for all), newest
// first: those run since this process started, and, from the labels of
// the current containers, the deploys that created them (so that history
// survives a restart of cutover).
func (d *Deployer) History(ctx context.Context, service string) ([]Result, error) {
	d.mu.Lock()
	var out []Result
	for _, r := range d.history {
		if service == "" || r.Service == service {
			out = append(out, r)
		}
	}
	d.mu.Unlock()
	labelled, err := d.labelled(ctx, service)
	if err != nil {
		return nil, err
	}
	for _, r := range labelled {
		if !slices.ContainsFunc(out, func(o Result) bool { return o.ID == r.ID }) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Result) int { return b.Started.Compare(a.Started) })
	return out, nil
}

// labelled returns the deploys that created the running containers of
// the service ("" for all), from their labels.
func (d *Deployer) labelled(ctx context.Context, service string) ([]Result, error) {
	var out []Result
	add := func(svc string, labels map[string]string) {
		id := labels[LabelID]
		if id == "" || slices.ContainsFunc(out, func(o Result) bool { return o.ID == id }) {
			return
		}
		started, _ := time.Parse(time.RFC3339, labels[LabelTime])
		out = append(out, Result{ID: id, Service: svc, Image: labels[LabelImage], Previous: labels[LabelPrevious],
			Outcome: Succeeded, Started: started})
	}
	if service != "" {
		for _, id := range d.traffic.Containers(service) {
			res, err := d.eng.ContainerInspect(ctx, id, clientInspect)
			if cerrdefs.IsNotFound(err) {
				continue // removed since
			}
			if err != nil {
				return nil, fmt.Errorf("deploy history of service %s: inspect container %s: %w", service, shortDocker(id), err)
			}
			if res.Container.Config != nil {
				add(service, res.Container.Config.Labels)
			}
		}
		return out, nil
	}
	list, err := d.eng.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", LabelID)})
	if err != nil {
		return nil, fmt.Errorf("deploy history: list containers: %w", err)
	}
	items := list.Items
	slices.SortFunc(items, func(a, b container.Summary) int { return cmp.Compare(a.ID, b.ID) })
	for _, c := range items {
		name := ""
		if len(c.Names) > 0 {
			name = dockerName(c.Names[0])
		}
		service, _ := d.serviceOf(c.ID, name, c.Labels)
		add(service, c.Labels)
	}
	return out, nil
}

// serviceOf is the service that the proxy routes to the container for,
// among those its labels and name suggest, and true; else the likeliest
// of them, and false.
func (d *Deployer) serviceOf(id, name string, labels map[string]string) (string, bool) {
	cands := serviceCandidates(labels, name)
	for _, s := range cands {
		if slices.Contains(d.traffic.Containers(s), id) {
			return s, true
		}
	}
	if len(cands) > 0 {
		return cands[0], false
	}
	return name, false
}
