package certs

import (
	"context"
	"errors"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Run watches the directory and reloads it after changes, and rescans it
// every Config.Rescan, until ctx ends; then it returns nil. When the
// directory cannot be watched (no inotify instance left), Run logs it and
// goes on with the rescans alone. Run reloads once as soon as it watches,
// for the changes made since New. Run must not be called twice at once.
func (s *Store) Run(ctx context.Context) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := s.watch(); err != nil {
		s.log.Warn().Err(err).Dur("rescan", s.cfg.Rescan).
			Msg("cannot watch the certificate directory: changes are seen at the next rescan only")
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	// What changed between New and the watch.
	s.reload()
	// A change is applied after a lull of Debounce, or after 10 times
	// that while changes keep coming.
	lull := time.NewTimer(s.cfg.Debounce)
	lull.Stop()
	defer lull.Stop()
	var fire <-chan time.Time // nil while no reload is due
	var first time.Time       // of the burst being waited on
	rescan := time.NewTicker(s.cfg.Rescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if fire == nil {
				first = time.Now()
			}
			if time.Since(first) < 10*s.cfg.Debounce {
				lull.Reset(s.cfg.Debounce)
			}
			fire = lull.C
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				s.log.Warn().Err(err).Msg("watch the certificate directory")
			}
			// Events may have been lost: read everything again.
			lull.Reset(s.cfg.Debounce)
			fire = lull.C
		case <-fire:
			fire = nil
			s.reload()
		case <-rescan.C:
			s.reload()
		}
	}
}

func (s *Store) watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(s.cfg.Dir); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}
