package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cutoverproxy/cutover/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timeout bounds every wait for the provider; no test waits for it to pass.
const timeout = 5 * time.Second

func config(host string) string {
	return "services:\n  web:\n    host: " + host + "\n    backends: [127.0.0.1:9001]\n"
}

const invalid = "services:\n  web:\n    balance: foo\n"

// sink records what a provider reports. Its channels are buffered so that
// the provider never waits for the test.
type sink struct {
	updates chan discovery.Snapshot
	fails   chan error
}

func newSink() *sink {
	return &sink{updates: make(chan discovery.Snapshot, 64), fails: make(chan error, 64)}
}

func (s *sink) Update(snap discovery.Snapshot) { s.updates <- snap }
func (s *sink) Fail(err error)                 { s.fails <- err }

// start runs a provider for path until the test ends.
func start(t *testing.T, path string) *sink {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := newSink()
	done := make(chan error, 1)
	go func() { done <- New(path).Run(ctx, s) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(timeout):
			t.Error("Run did not return after its context ended")
		}
	})
	return s
}

// waitUpdate waits for an update to the configuration in content. Updates
// to other states are skipped: an in-place write may be read while
// truncated, before the new content is written.
func (s *sink) waitUpdate(t *testing.T, content string) {
	t.Helper()
	want, err := Parse("test", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case got := <-s.updates:
			if got.Equal(want) {
				return
			}
		case err := <-s.fails:
			t.Fatalf("Fail(%v) while waiting for an update", err)
		case <-deadline:
			t.Fatalf("no update to:\n%s", content)
		}
	}
}

// waitFail waits for a Fail; an Update before it is an error.
func (s *sink) waitFail(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.fails:
		return err
	case snap := <-s.updates:
		t.Fatalf("Update(%+v), want Fail", snap)
	case <-time.After(timeout):
		t.Fatal("no Fail")
	}
	return nil
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace writes content to a temporary file and renames it over path, as
// vim and sed -i do.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestRunFollowsEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	write(t, path, config("v1.example.com"))
	s := start(t, path)
	s.waitUpdate(t, config("v1.example.com"))

	write(t, path, config("v2.example.com")) // in place
	s.waitUpdate(t, config("v2.example.com"))

	replace(t, path, config("v3.example.com"))
	s.waitUpdate(t, config("v3.example.com"))

	replace(t, path, invalid)
	if err := s.waitFail(t); !strings.Contains(err.Error(), "cutover.yaml:3: services.web.balance: unknown policy") {
		t.Errorf("Fail(%v), want the file, line and key", err)
	}

	replace(t, path, config("v4.example.com"))
	s.waitUpdate(t, config("v4.example.com"))

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.waitFail(t); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Fail(%v) after removal, want a not-exist error", err)
	}
	// The same content as before the removal is reported again: the
	// Update replaces the failure.
	write(t, path, config("v4.example.com"))
	s.waitUpdate(t, config("v4.example.com"))
}

func TestRunInvalidAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	write(t, path, invalid)
	s := start(t, path)
	if err := s.waitFail(t); !strings.Contains(err.Error(), "services.web.balance") {
		t.Errorf("Fail(%v), want the bad key", err)
	}
	replace(t, path, config("a.com"))
	s.waitUpdate(t, config("a.com"))
}

// TestRunSymlinkSwap updates the file the way Kubernetes updates a
// ConfigMap volume: path → ..data/cutover.yaml, and ..data is a symlink
// that is replaced atomically by one to a new directory.
func TestRunSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "cutover.yaml"), content)
	}
	symlink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", config("v1.example.com"))
	symlink("..v1", "..data")
	symlink(filepath.Join("..data", "cutover.yaml"), "cutover.yaml")
	path := filepath.Join(dir, "cutover.yaml")
	s := start(t, path)
	s.waitUpdate(t, config("v1.example.com"))

	version("..v2", config("v2.example.com"))
	symlink("..v2", "..data_tmp")
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	s.waitUpdate(t, config("v2.example.com"))

	// A write to the new target, in a directory that is not watched, is
	// seen through the watch on the file itself.
	write(t, filepath.Join(dir, "..v2", "cutover.yaml"), config("v3.example.com"))
	s.waitUpdate(t, config("v3.example.com"))
}

func TestRunUnreadableAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{
		filepath.Join(dir, "missing.yaml"),
		filepath.Join(dir, "no-such-dir", "cutover.yaml"),
		dir, // a directory, not a file
	} {
		s := newSink()
		err := New(path).Run(context.Background(), s)
		if err == nil {
			t.Errorf("Run(%s) = nil, want an error", path)
		}
		if len(s.updates)+len(s.fails) != 0 {
			t.Errorf("Run(%s) reported to the sink before failing", path)
		}
	}
	err := New(filepath.Join(dir, "missing.yaml")).Run(context.Background(), newSink())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Run of a missing file = %v, want a not-exist error", err)
	}
}

func TestRunStopsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	write(t, path, "services: {}\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newSink()
	if err := New(path).Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if len(s.updates) != 1 {
		t.Errorf("%d updates, want the initial one", len(s.updates))
	}
}

// TestReloadSkipsUnchanged drives reload directly: whether an event leads
// to a report depends on the content only, which a Run test could show
// only by waiting for nothing to happen.
func TestReloadSkipsUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	w, err := newWatch(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.watcher.Close()
	s := newSink()
	expect := func(step string, updates, fails int) {
		t.Helper()
		if len(s.updates) != updates || len(s.fails) != fails {
			t.Fatalf("%s: %d updates and %d fails, want %d and %d", step, len(s.updates), len(s.fails), updates, fails)
		}
		for range updates {
			<-s.updates
		}
		for range fails {
			<-s.fails
		}
	}
	reload := func() {
		t.Helper()
		if err := w.reload(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.reload(s); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reload of a missing file = %v", err)
	}
	expect("missing", 0, 0) // the caller reports read errors
	write(t, path, config("a.com"))
	reload()
	expect("first read", 1, 0)
	reload()
	expect("unchanged", 0, 0)
	replace(t, path, config("a.com"))
	reload()
	expect("same content, new file", 0, 0)
	write(t, path, invalid)
	reload()
	expect("invalid", 0, 1)
	reload()
	expect("still invalid", 0, 0)
	write(t, path, config("a.com"))
	reload()
	expect("valid again", 1, 0)
}

func TestName(t *testing.T) {
	var p discovery.Provider = New("x.yaml")
	if p.Name() != "file" {
		t.Errorf("Name() = %q, want file", p.Name())
	}
}
