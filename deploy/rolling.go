package deploy

import (
	"context"
	"fmt"
)

// rolling replaces the old containers batch by batch, start-first: a
// batch's new containers serve before its old ones are drained. Old
// containers are stopped, not removed, until every batch serves (the
// commit point), so that a failed batch can bring them back: see the
// package doc. Blue-green is rolling with one batch.
func (r *run) rolling(ctx context.Context, p *plan, batch int) error {
	n := len(p.pairs)
	batch = min(max(batch, 1), n)
	for i := 0; i < n; i += batch {
		b := p.pairs[i:min(i+batch, n)]
		if err := r.bringUp(ctx, b); err != nil {
			return r.revertRolling(ctx, p.pairs[:i], b, err)
		}
		// Once a batch serves, its switch completes whatever ctx says:
		// stopping old containers without draining them would cut
		// requests.
		r.retire(context.WithoutCancel(ctx), b)
	}
	r.removeOld(context.WithoutCancel(ctx), p.pairs)
	return nil
}

// revertRolling undoes a rolling deploy whose batch failed: the failed
// batch's new containers go (its old ones still serve), then the old
// containers of the earlier batches come back, each before the new one
// that replaced it goes.
func (r *run) revertRolling(ctx context.Context, done, failed []*pair, cause error) error {
	ctx = context.WithoutCancel(ctx)
	r.step("rollback", "", "%v: rolling back", cause)
	r.discard(ctx, failed)
	back, lost := r.restore(ctx, done)
	r.discard(ctx, back)
	if len(lost) > 0 {
		var olds, news []*box
		for _, p := range lost {
			olds, news = append(olds, p.old), append(news, p.new)
		}
		// The new containers serve in their place; the old ones are kept,
		// stopped, for inspection.
		r.stopAll(ctx, olds)
		return fmt.Errorf("%w; rollback incomplete: old containers %s did not serve again, so their replacements %s (image %s) keep serving; the old ones are stopped, not removed",
			cause, names(olds), names(news), r.res.Image)
	}
	r.res.Outcome = RolledBack
	return fmt.Errorf("%w; rolled back: the new containers were removed and the old ones serve", cause)
}
