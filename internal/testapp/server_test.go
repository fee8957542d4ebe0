package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// blockingHandler signals on started when a request arrives and answers
// once release is closed, or gives up when the request's context ends.
type blockingHandler struct {
	started chan struct{}
	release chan struct{}
}

func (h blockingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.started <- struct{}{}
	select {
	case <-h.release:
		io.WriteString(w, "done")
	case <-r.Context().Done():
	}
}

// startServe runs serve on a loopback listener and returns its URL and the
// channel that receives serve's result.
func startServe(t *testing.T, ctx context.Context, h http.Handler, grace time.Duration) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, grace) }()
	return "http://" + ln.Addr().String(), done
}

// get runs one GET in the background on its own transport, closed after.
func get(url string) <-chan string {
	out := make(chan string, 1)
	go func() {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- string(b)
	}()
	return out
}

func TestServeFinishesInFlightOnShutdown(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := blockingHandler{started: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	url, done := startServe(t, ctx, h, time.Minute)
	body := get(url)
	<-h.started
	cancel() // shutdown begins with the request in flight
	close(h.release)
	if got := <-body; got != "done" {
		t.Errorf("in-flight request got %q, want done", got)
	}
	if err := <-done; err != nil {
		t.Errorf("serve = %v, want nil", err)
	}
}

func TestServeClosesAfterGrace(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := blockingHandler{started: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	url, done := startServe(t, ctx, h, time.Millisecond)
	body := get(url)
	<-h.started
	cancel() // the handler never finishes: serve must close it after grace
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "in-flight") {
		t.Errorf("serve = %v, want an in-flight error", err)
	}
	if got := <-body; !strings.HasPrefix(got, "error:") {
		t.Errorf("cut request got %q, want an error", got)
	}
}

func TestServeH2C(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	url, done := startServe(t, ctx, &app{name: "a", version: "v1", now: time.Now}, time.Minute)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	resp, err := (&http.Client{Transport: tr}).Get(url + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	if got := resp.Header.Get("X-Seen-Protocol"); got != "HTTP/2.0" {
		t.Errorf("X-Seen-Protocol = %q, want HTTP/2.0", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve = %v", err)
	}
}
