package deploy

import (
	"context"
	"errors"
	"fmt"
)

// recreate replaces the old containers stop-first, for services whose
// volume must have a single writer: the proxy holds requests while the
// old containers are drained and stopped and the new ones, on the same
// volumes, start and pass their health checks.
func (r *run) recreate(ctx context.Context, p *plan) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deploy cancelled: %w", err)
	}
	release := r.hold()
	defer release()
	r.retire(context.WithoutCancel(ctx), p.pairs)
	var stuck []error
	for _, q := range p.pairs {
		if q.stopFailed != nil {
			stuck = append(stuck, q.stopFailed)
		}
	}
	if len(stuck) > 0 {
		// Starting the new containers now would make two writers.
		return r.revertRecreate(ctx, p, fmt.Errorf("%w: recreate starts the new containers only once every old one is stopped", errors.Join(stuck...)))
	}
	if err := r.bringUp(ctx, p.pairs); err != nil {
		return r.revertRecreate(ctx, p, err)
	}
	release()
	r.removeOld(context.WithoutCancel(ctx), p.pairs)
	return nil
}

// revertRecreate removes the new containers and starts the old ones again.
// The hold ends when recreate returns.
func (r *run) revertRecreate(ctx context.Context, p *plan, cause error) error {
	ctx = context.WithoutCancel(ctx)
	r.step("rollback", "", "%v: rolling back", cause)
	r.discard(ctx, p.pairs)
	_, lost := r.restore(ctx, p.pairs)
	if len(lost) > 0 {
		var olds []*box
		for _, q := range lost {
			olds = append(olds, q.old)
		}
		return fmt.Errorf("%w; rollback incomplete: old containers %s did not serve again: look at them (docker logs, docker start)", cause, names(olds))
	}
	r.res.Outcome = RolledBack
	return fmt.Errorf("%w; rolled back: the new containers were removed and the old ones serve again", cause)
}
