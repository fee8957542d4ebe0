package deploy

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
)

// ensureImage makes sure the image is present, pulling it when it is
// missing (or when pull is set), and returns its ID. It is the first thing
// a deploy checks: an image that is neither present nor pullable fails
// the deploy before any container is touched.
func (r *run) ensureImage(ctx context.Context, ref string, pull bool) (string, error) {
	if !pull {
		res, err := r.d.eng.ImageInspect(ctx, ref)
		if err == nil {
			r.step("pull", "", "image %s is present (%s)", ref, shortImage(res.ID))
			return res.ID, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("inspect image %s: %w (no container was touched)", ref, err)
		}
	}
	r.step("pull", "", "pulling %s", ref)
	if err := r.pull(ctx, ref); err != nil {
		return "", fmt.Errorf("image %s is not present and could not be pulled: %w (no container was touched: check the image name, and that the engine can reach and log in to its registry)", ref, err)
	}
	res, err := r.d.eng.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("image %s was pulled, but inspect: %w (no container was touched)", ref, err)
	}
	r.step("pull", "", "pulled %s (%s)", ref, shortImage(res.ID))
	return res.ID, nil
}

// pull pulls ref to the end: the progress stream is drained, and an error
// in it is the pull's error. ctx bounds it.
func (r *run) pull(ctx context.Context, ref string) error {
	stream, err := r.d.eng.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer stream.Close()
	return stream.Wait(ctx)
}

// previous is the image to roll back to: the reference the first
// container replaced, or, when that tag has moved since, the exact image
// it named, if it is still present.
func (r *run) previous(ctx context.Context, first container.InspectResponse) (string, error) {
	ref, id := first.Config.Labels[LabelPrevious], first.Config.Labels[LabelPreviousID]
	if ref == "" {
		return "", fmt.Errorf("service %s has no previous image to roll back to: container %s was not created by a cutover deploy (it has no %s label); deploy an image instead",
			r.req.Service, dockerName(first.Name), LabelPrevious)
	}
	if id == "" {
		return ref, nil
	}
	if res, err := r.d.eng.ImageInspect(ctx, ref); err == nil && res.ID == id {
		return ref, nil
	}
	if _, err := r.d.eng.ImageInspect(ctx, id); err == nil {
		r.step("pull", "", "%s names another image now; rolling back to the image it named then, %s", ref, shortImage(id))
		return id, nil
	}
	return ref, nil
}

// oldImages returns each old container's image, by image ID. An image
// that cannot be inspected is nil: the settings its container inherited
// from it are then copied as if they were the container's own.
func (r *run) oldImages(ctx context.Context, olds []container.InspectResponse) map[string]*image.InspectResponse {
	out := map[string]*image.InspectResponse{}
	for _, o := range olds {
		if _, done := out[o.Image]; done {
			continue
		}
		res, err := r.d.eng.ImageInspect(ctx, o.Image)
		if err != nil || res.Config == nil {
			r.log.Warn().Err(err).Str("container", dockerName(o.Name)).Str("image", o.Image).
				Msg("cannot inspect the old image: the settings the container inherited from it are copied as its own")
			out[o.Image] = nil
			continue
		}
		out[o.Image] = &res.InspectResponse
	}
	return out
}
