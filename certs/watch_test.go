package certs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// running starts s.Run for the test and stops it at cleanup.
func running(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitUntil waits, reload by reload, until cond holds.
func waitUntil(t *testing.T, s *Store, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		next := s.nextReload()
		if cond() {
			return
		}
		select {
		case <-next:
		case <-timeout:
			t.Fatalf("%s: not within 10s; names %q, problems %q", what, s.Names(), s.Problems())
		}
	}
}

// watched returns a store of a new directory whose changes are seen by
// the watcher alone: the rescan is an hour away.
func watched(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s := newStore(t, Config{Dir: dir, Debounce: 10 * time.Millisecond, Rescan: time.Hour})
	running(t, s)
	return s, dir
}

func TestWatchAddReplaceRemove(t *testing.T) {
	ca := newCA(t)
	s, dir := watched(t)
	ca.writePair(t, dir, "web", leaf{serial: 1, dns: []string{"a.test"}})
	waitUntil(t, s, "added pair", func() bool { return serial(t, s, "a.test") == 1 })

	ca.writeBundle(t, dir, "api", leaf{serial: 2, dns: []string{"*.api.test"}})
	waitUntil(t, s, "added bundle", func() bool { return serial(t, s, "x.api.test") == 2 })

	ca.writePair(t, dir, "web", leaf{serial: 3, dns: []string{"a.test"}})
	waitUntil(t, s, "replaced pair", func() bool { return serial(t, s, "a.test") == 3 })

	// Written in place, not renamed.
	c, k := ca.issue(t, leaf{serial: 4, dns: []string{"*.api.test"}})
	if err := os.WriteFile(filepath.Join(dir, "api.pem"), append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, s, "bundle written in place", func() bool { return serial(t, s, "x.api.test") == 4 })

	if err := os.Remove(filepath.Join(dir, "api.pem")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, s, "removed bundle", func() bool { return strings.Join(s.Names(), ",") == "web" })
	if got := serial(t, s, "x.api.test"); got != 3 {
		t.Errorf("removed wildcard: serial %d, want the default 3", got)
	}
}

// TestWatchBrokenKeepsOld: a broken save keeps the certificate in service
// and is reported until a good one follows.
func TestWatchBrokenKeepsOld(t *testing.T) {
	ca := newCA(t)
	s, dir := watched(t)
	ca.writePair(t, dir, "web", leaf{serial: 1, dns: []string{"a.test"}})
	waitUntil(t, s, "added pair", func() bool { return serial(t, s, "a.test") == 1 })

	writeFile(t, dir, "web.crt", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	waitUntil(t, s, "broken certificate reported", func() bool { return len(s.Problems()) == 1 })
	if p := s.Problems()[0]; !strings.HasPrefix(p, "web.crt, web.key: ") {
		t.Errorf("problem %q, want it to name web.crt and web.key", p)
	}
	if got := serial(t, s, "a.test"); got != 1 {
		t.Errorf("broken certificate: serial %d, want the old 1", got)
	}

	ca.writePair(t, dir, "web", leaf{serial: 2, dns: []string{"a.test"}})
	waitUntil(t, s, "fixed pair", func() bool { return serial(t, s, "a.test") == 2 && len(s.Problems()) == 0 })
}

// TestWatchSymlinkSwap: a Kubernetes secret volume replaces its files by
// pointing the ..data symlink at a new directory; no event names the
// certificate files themselves.
func TestWatchSymlinkSwap(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	version := func(name string, serial int64) {
		t.Helper()
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		ca.writePair(t, d, "tls", leaf{serial: serial, dns: []string{"a.test"}})
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", 1)
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	s := newStore(t, Config{Dir: dir, Debounce: 10 * time.Millisecond, Rescan: time.Hour})
	running(t, s)
	if got := serial(t, s, "a.test"); got != 1 {
		t.Fatalf("first version: serial %d, want 1", got)
	}
	version("..v2", 2)
	waitUntil(t, s, "swapped symlink", func() bool { return serial(t, s, "a.test") == 2 })
}

// TestRescan: changes the watcher does not see (here: a symlink target in
// another directory, rewritten) are picked up by the rescan.
func TestRescan(t *testing.T) {
	ca := newCA(t)
	dir, elsewhere := t.TempDir(), t.TempDir()
	ca.writeBundle(t, elsewhere, "web", leaf{serial: 1, dns: []string{"a.test"}})
	if err := os.Symlink(filepath.Join(elsewhere, "web.pem"), filepath.Join(dir, "web.pem")); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, Config{Dir: dir, Debounce: time.Millisecond, Rescan: 20 * time.Millisecond})
	running(t, s)
	ca.writeBundle(t, elsewhere, "web", leaf{serial: 2, dns: []string{"a.test"}})
	waitUntil(t, s, "rescan", func() bool { return serial(t, s, "a.test") == 2 })
}
