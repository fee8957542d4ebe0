package acme

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// unreachableCA is the directory URL of a port nothing listens on: every
// order fails at once with "connection refused".
func unreachableCA(t *testing.T) string {
	return "https://" + freeAddr(t) + "/dir"
}

func TestNewAndSetHostsStartNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	m.SetHosts([]string{"a.example", "b.example"})
	m.SetHosts([]string{"a.example"})
	_ = m.Status()
	_, _ = m.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"})
}

func TestSetHosts(t *testing.T) {
	var logs logBuffer
	m, err := New(Config{DataDir: t.TempDir(), Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	m.SetHosts([]string{"B.example", "a.example.", "a.example", "*.wild.example", "10.0.0.1"})
	m.SetHosts([]string{"a.example", "b.example", "*.wild.example", "10.0.0.1"})
	st := m.Status()
	if len(st) != 2 || st[0].Host != "a.example" || st[1].Host != "b.example" {
		t.Fatalf("Status() = %+v, want a.example and b.example", st)
	}
	for _, s := range st {
		if s.State != StateObtaining || !s.NotAfter.IsZero() || s.Failures != 0 {
			t.Errorf("new host %+v, want obtaining", s)
		}
	}
	if n := logs.count("host name ignored", "*.wild.example", "DNS-01"); n != 1 {
		t.Errorf("wildcard reported %d times over two updates, want once", n)
	}
	if n := logs.count("host name ignored", "10.0.0.1", "IP address"); n != 1 {
		t.Errorf("IP address reported %d times, want once", n)
	}
	// Gone, then back: reported again.
	m.SetHosts([]string{"a.example"})
	m.SetHosts([]string{"a.example", "*.wild.example"})
	if n := logs.count("host name ignored", "*.wild.example"); n != 2 {
		t.Errorf("wildcard reported %d times after it came back, want 2", n)
	}

	if h, _ := m.next(time.Now()); h == nil || h.name != "a.example" {
		t.Fatalf("next() = %v, want a.example due", h)
	}
	m.SetHosts(nil)
	if st := m.Status(); len(st) != 0 {
		t.Errorf("Status() after removing every host = %+v", st)
	}
	m.release("a.example")
	if h, wait := m.next(time.Now().Add(1000 * time.Hour)); h != nil || wait != idleWait {
		t.Errorf("next() after removal = %v, %v; want nothing to do", h, wait)
	}
}

func TestRunServesStoredCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := unreachableCA(t)
	store := newStorage(dir, ca)
	now := time.Now()
	valid := selfSigned(t, "a.example", now.Add(-time.Hour), now.Add(89*24*time.Hour))
	if err := store.saveCert("a.example", valid); err != nil {
		t.Fatal(err)
	}
	if err := store.saveCert("old.example", selfSigned(t, "old.example", now.Add(-2*time.Hour), now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	m := startManager(t, Config{DataDir: dir, CA: ca, Logger: logs.logger(), RetryMin: time.Hour})
	m.SetHosts([]string{"a.example", "old.example"})

	e := m.waitEvent(t, "a.example", EventLoaded)
	want, _ := parseBundle(valid, "a.example", now)
	if !e.NotAfter.Equal(want.Leaf.NotAfter) {
		t.Errorf("loaded NotAfter %v, want %v", e.NotAfter, want.Leaf.NotAfter)
	}
	c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "A.example"})
	if err != nil || c == nil || !c.Leaf.Equal(want.Leaf) {
		t.Fatalf("GetCertificate(a.example) = %v, %v; want the stored certificate", c, err)
	}
	// The expired one is not served: it is ordered again, which fails here.
	f := m.waitEvent(t, "old.example", EventFailed)
	if !strings.Contains(f.Err.Error(), "connection refused") {
		t.Errorf("order error %v, want connection refused", f.Err)
	}
	if n := logs.count("stored certificate unusable", "old.example", "expired"); n != 1 {
		t.Errorf("expired stored certificate reported %d times, want once", n)
	}
	if c, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "old.example"}); c != nil {
		t.Error("expired stored certificate served")
	}
	st := m.Status()
	renew := renewAt(want.Leaf.NotBefore, want.Leaf.NotAfter, DefaultRenewWindow)
	if len(st) != 2 || st[0].State != StateValid || !st[0].NextAttempt.Equal(renew) ||
		st[1].State != StateFailed || st[1].Failures != 1 || !strings.Contains(st[1].LastError, "connection refused") {
		t.Errorf("Status() = %+v\nwant a.example valid, renewal at %v; old.example failed once", st, renew)
	}
	if d := time.Until(st[1].NextAttempt); d < 50*time.Minute || d > time.Hour {
		t.Errorf("retry of old.example in %v, want RetryMin (1h)", d)
	}
}

func TestRunRetriesWithBackoffAndLogsOnce(t *testing.T) {
	var logs logBuffer
	m := startManager(t, Config{
		DataDir:  t.TempDir(),
		CA:       unreachableCA(t),
		Logger:   logs.logger(),
		RetryMin: time.Millisecond,
		RetryMax: 4 * time.Millisecond,
	})
	m.SetHosts([]string{"a.example"})
	for range 4 {
		m.waitEvent(t, "a.example", EventFailed)
	}
	m.stop()
	st := m.Status()
	if len(st) != 1 || st[0].State != StateFailed || st[0].Failures < 4 || !strings.Contains(st[0].LastError, "connection refused") {
		t.Errorf("Status() = %+v, want failed at least 4 times", st)
	}
	if n := logs.count(`"level":"error"`, "order failed", "a.example"); n != 1 {
		t.Errorf("%d order failures logged as errors, want 1 (the repeats at debug level)", n)
	}
	if n := logs.count(`"level":"debug"`, "order failed"); n < 3 {
		t.Errorf("%d repeated failures logged at debug level, want >= 3", n)
	}
}

func TestRunOnce(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Run(ctx); err != nil {
		t.Errorf("Run(cancelled) = %v, want nil", err)
	}
	if err := m.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}
}
