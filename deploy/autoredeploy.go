package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Backoff between reconnections to the image event stream.
const (
	minEventBackoff = time.Second
	maxEventBackoff = 30 * time.Second
)

// followImages follows the engine's image events until ctx ends,
// reconnecting with backoff; a reconnection asks for the events missed
// since the last one seen.
func (d *Deployer) followImages(ctx context.Context) {
	backoff := minEventBackoff
	since := ""
	for {
		got, err := d.imageSession(ctx, &since)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = minEventBackoff
		}
		d.log.Warn().Err(err).Dur("retry_in", backoff).Msg("autoredeploy: docker image events lost, reconnecting")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxEventBackoff)
	}
}

// imageSession follows one event stream until it fails. It reports
// whether any event came.
func (d *Deployer) imageSession(ctx context.Context, since *string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := client.Filters{}.Add("type", string(events.ImageEventType)).
		Add("event", string(events.ActionTag), string(events.ActionPull), string(events.ActionLoad))
	stream := d.eng.Events(ctx, client.EventsListOptions{Since: *since, Filters: f})
	got := false
	for {
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case err, ok := <-stream.Err:
			if !ok || err == nil {
				err = errors.New("the event stream ended")
			}
			return got, err
		case m, ok := <-stream.Messages:
			if !ok {
				return got, errors.New("the event stream ended")
			}
			got = true
			*since = eventTime(m)
			for _, req := range d.autoredeploys(ctx) {
				d.Trigger(req)
			}
		}
	}
}

// eventTime is an event's time in the form EventsListOptions.Since takes.
func eventTime(m events.Message) string {
	if m.TimeNano != 0 {
		return fmt.Sprintf("%d.%09d", m.TimeNano/1e9, m.TimeNano%1e9)
	}
	return strconv.FormatInt(m.Time, 10)
}

// autoredeploys returns a deploy request for every service that has a
// running container labelled cutover.autoredeploy=true whose image
// reference now names another image than the one it runs. Each service
// gets one request, of the reference its first such container runs.
func (d *Deployer) autoredeploys(ctx context.Context) []Request {
	list, err := d.eng.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", LabelAutoredeploy)})
	if err != nil {
		d.log.Warn().Err(err).Msg("autoredeploy: list containers")
		return nil
	}
	items := list.Items
	slices.SortFunc(items, func(a, b container.Summary) int { return strings.Compare(firstName(a.Names), firstName(b.Names)) })
	resolved := map[string]string{} // reference → the image ID it names now, "" if none
	var reqs []Request
	for _, c := range items {
		if on, _ := strconv.ParseBool(c.Labels[LabelAutoredeploy]); !on {
			continue
		}
		// The list shows an image ID instead of the reference once the
		// reference has moved: the container's config has it.
		res, err := d.eng.ContainerInspect(ctx, c.ID, clientInspect)
		if err != nil || res.Container.Config == nil {
			continue
		}
		ref := res.Container.Config.Image
		if ref == "" || strings.HasPrefix(ref, "sha256:") {
			continue // an ID never moves
		}
		now, ok := resolved[ref]
		if !ok {
			if img, err := d.eng.ImageInspect(ctx, ref); err == nil {
				now = img.ID
			}
			resolved[ref] = now
		}
		if now == "" || now == res.Container.Image {
			continue
		}
		service, ok := d.serviceOf(c.ID, firstName(c.Names), res.Container.Config.Labels)
		if !ok {
			d.log.Warn().Str("container", firstName(c.Names)).Str("image", ref).
				Msg("autoredeploy: the image reference names a new image, but the proxy routes no service to the container")
			continue
		}
		if slices.ContainsFunc(reqs, func(r Request) bool { return r.Service == service }) {
			continue
		}
		d.log.Info().Str("service", service).Str("image", ref).Str("from", shortImage(res.Container.Image)).
			Str("to", shortImage(now)).Msg("autoredeploy: the image reference names a new image")
		reqs = append(reqs, Request{Service: service, Image: ref, Trigger: triggerAutoredeploy})
	}
	return reqs
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return dockerName(names[0])
}
