package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cutoverproxy/cutover/discovery"
)

// debounce is how long the provider waits after the last event on the file
// before it reads it. One save is a burst of events within a millisecond or
// so (truncate, write, chmod; or create temp, write, rename); a short wait
// reads the file once, whole, and keeps reloads instant for a human.
const debounce = 10 * time.Millisecond

// Provider reads services from a YAML file and watches it for changes. It
// reports through its Sink only and never logs. A Provider holds no state
// between runs; Run may be called again after it returned.
type Provider struct {
	path string
}

var _ discovery.Provider = (*Provider)(nil)

// New returns a provider for the file at path.
func New(path string) *Provider { return &Provider{path: path} }

// Name returns "file".
func (p *Provider) Name() string { return providerName }

// Run loads the file, reports it to sink, and then reloads it on every
// change until ctx ends, when it returns ctx.Err(). It returns an error at
// once if the file cannot be read at the start or its directory cannot be
// watched: the operator named the file, so a missing one is a mistake. An
// invalid file, at the start or later, and a read failure later are
// reported with sink.Fail; the last good configuration stays in effect.
func (p *Provider) Run(ctx context.Context, sink discovery.Sink) error {
	w, err := newWatch(p.path)
	if err != nil {
		return err
	}
	defer w.watcher.Close()
	if err := w.reload(sink); err != nil {
		return fmt.Errorf("read configuration file: %w", err)
	}
	return w.loop(ctx, sink)
}

// watch follows one file: it watches the file's directory, to see the
// file replaced by a rename or a symlink swap, and the file itself, to see
// in-place writes through a bind mount (which the directory does not
// report).
type watch struct {
	path, base string
	watcher    *fsnotify.Watcher
	data       []byte      // content of the last read
	read       bool        // data is valid: the last read succeeded
	target     string      // what path resolved to at the last read; "" if it did not
	file       os.FileInfo // the file the watcher follows; nil if none
	parser     reparser    // parses each version, reusing the last one's services
}

func newWatch(path string) (*watch, error) {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := watcher.Add(dir); err != nil {
		watcher.Close()
		return nil, fmt.Errorf("watch directory %s of the configuration file: %w", dir, err)
	}
	return &watch{path: path, base: filepath.Base(path), watcher: watcher}, nil
}

// loop reloads the file a moment after each burst of relevant events.
func (w *watch) loop(ctx context.Context, sink discovery.Sink) error {
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	var fire <-chan time.Time // nil while no reload is due
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.watcher.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if !w.relevant(ev) {
				continue
			}
		case err, ok := <-w.watcher.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			// Events may have been lost: read again and report the
			// outcome even if the content is unchanged, so that it
			// replaces this error.
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				sink.Fail(fmt.Errorf("watch %s: %w", w.path, err))
			}
			w.read = false
		case <-fire:
			fire = nil
			if err := w.reload(sink); err != nil {
				sink.Fail(err)
			}
			continue
		}
		timer.Reset(debounce)
		fire = timer.C
	}
}

// relevant reports whether ev may have changed the file: an event for its
// name, or any event in the directory after which path resolves to another
// file (a Kubernetes ConfigMap swaps a ..data symlink, and no event names
// the file itself).
func (w *watch) relevant(ev fsnotify.Event) bool {
	if filepath.Base(ev.Name) == w.base {
		return true
	}
	target, _ := filepath.EvalSymlinks(w.path)
	return target != w.target
}

// reload reads the file and, if its content changed since the last read,
// reports it: Update when it is valid, Fail when not. It returns the read
// error, if any, for the caller to report.
func (w *watch) reload(sink discovery.Sink) error {
	w.target, _ = filepath.EvalSymlinks(w.path)
	data, err := os.ReadFile(w.path)
	w.follow()
	if err != nil {
		w.read = false
		return err
	}
	if w.read && bytes.Equal(data, w.data) {
		return nil
	}
	w.data, w.read = data, true
	snap, err := w.parser.parse(w.path, data)
	if err != nil {
		sink.Fail(err)
		return nil
	}
	sink.Update(snap)
	return nil
}

// follow keeps a watch on the file that path names now, beside the one on
// the directory. A file replaced by a rename is a new file: the watch moves
// to it.
func (w *watch) follow() {
	fi, err := os.Stat(w.path)
	if err != nil || w.file != nil && os.SameFile(fi, w.file) {
		return
	}
	// The old file's watch is gone if the file was deleted; otherwise it
	// would report a file that path no longer names.
	_ = w.watcher.Remove(w.path)
	if w.watcher.Add(w.path) == nil {
		w.file = fi
	}
}
