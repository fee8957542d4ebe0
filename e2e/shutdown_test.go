package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM lets a slow request in flight finish, then cutover exits 0.
func TestSIGTERMFinishesInFlightRequest(t *testing.T) {
	a := newBackend(t, "a")
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: slow.test
    backends: [%s]
`, a.addr()), "--shutdown-timeout", "20s")
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, body, err := in.get(&http.Client{Timeout: 20 * time.Second}, "slow.test", "/?sleep=1500ms")
		done <- result{code, body, err}
	}()
	eventually(t, 5*time.Second, func() error {
		if a.requests.Load() == 0 {
			return fmt.Errorf("the slow request has not reached the backend")
		}
		return nil
	})
	in.signal(syscall.SIGTERM)
	in.waitLog(5*time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["message"]), "shutting down")
	})
	// New connections are refused while the slow request finishes.
	eventually(t, 5*time.Second, func() error {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		if _, _, err := in.get(c, "slow.test", "/"); err == nil {
			return fmt.Errorf("a new connection was still accepted")
		}
		return nil
	})
	r := <-done
	if r.err != nil || r.code != 200 {
		t.Fatalf("slow request: %d %q %v, want 200", r.code, r.body, r.err)
	}
	if code := in.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}
