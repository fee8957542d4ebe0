package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bounds of the echo handler's query parameters; larger values are clamped.
const (
	MaxSleep  = 60 * time.Second // ?sleep=
	MaxSize   = 64 << 20         // ?size=, in bytes
	MaxStream = 10000            // ?stream=, in chunks
)

// seenHeaders are the request headers echoed back as X-Seen-<name>.
var seenHeaders = [...]string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id"}

// echoOptions are the query parameters of an echo request.
type echoOptions struct {
	sleep  time.Duration // ?sleep=DURATION before answering; zero means none
	status int           // ?status=NNN; default 200
	size   int64         // ?size=N bytes of body; -1 means the echo line
	stream int           // ?stream=N flushed chunks; zero means none
}

func parseEchoOptions(q url.Values) (echoOptions, error) {
	opt := echoOptions{status: http.StatusOK, size: -1}
	var err error
	if v := q.Get("sleep"); v != "" {
		if opt.sleep, err = time.ParseDuration(v); err != nil || opt.sleep < 0 {
			return opt, fmt.Errorf("query sleep=%q: want a duration such as 250ms", v)
		}
		opt.sleep = min(opt.sleep, MaxSleep)
	}
	if v := q.Get("status"); v != "" {
		if opt.status, err = strconv.Atoi(v); err != nil || opt.status < 200 || opt.status > 599 {
			return opt, fmt.Errorf("query status=%q: want a status code from 200 to 599", v)
		}
	}
	if v := q.Get("size"); v != "" {
		if opt.size, err = strconv.ParseInt(v, 10, 64); err != nil || opt.size < 0 {
			return opt, fmt.Errorf("query size=%q: want a byte count, at most %d", v, MaxSize)
		}
		opt.size = min(opt.size, MaxSize)
	}
	if v := q.Get("stream"); v != "" {
		if opt.stream, err = strconv.Atoi(v); err != nil || opt.stream < 0 {
			return opt, fmt.Errorf("query stream=%q: want a chunk count, at most %d", v, MaxStream)
		}
		opt.stream = min(opt.stream, MaxStream)
	}
	return opt, nil
}

// serveEcho is the default handler: it counts the request and reads the
// body, waits while hang mode is on, then answers as the query parameters
// say.
func (a *app) serveEcho(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	n, _ := io.Copy(io.Discard, r.Body)
	if !a.hang.wait(r.Context()) {
		return // hung until the client went away
	}
	h := w.Header()
	a.setIdentity(h)
	setSeen(h, r)
	h.Set("X-Body-Bytes", strconv.FormatInt(n, 10))
	opt, err := parseEchoOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !sleep(r.Context(), opt.sleep) {
		return // the client is gone
	}
	status := opt.status
	if a.failing.Load() {
		status = http.StatusInternalServerError
	}
	switch {
	case opt.stream > 0:
		a.writeStream(w, r, status, opt.stream)
	case opt.size >= 0:
		writeSize(w, status, opt.size)
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %s %s %s\n", a.name, a.version, r.Method, r.URL.EscapedPath())
	}
}

// setSeen echoes the forwarding headers, the Host and the protocol that the
// request arrived with.
func setSeen(h http.Header, r *http.Request) {
	for _, k := range seenHeaders {
		if vs := r.Header.Values(k); len(vs) > 0 {
			h.Set("X-Seen-"+k, strings.Join(vs, ", "))
		}
	}
	h.Set("X-Seen-Host", r.Host)
	h.Set("X-Seen-Protocol", r.Proto)
}

// sleep waits for d and reports whether it did; false means ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeStream sends n lines, each flushed, a.streamInterval apart.
func (a *app) writeStream(w http.ResponseWriter, r *http.Request, status, n int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	for i := 1; i <= n; i++ {
		if i > 1 && !sleep(r.Context(), a.streamInterval) {
			return
		}
		if _, err := fmt.Fprintf(w, "%s %s chunk %d\n", a.name, a.version, i); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeSize sends a body of exactly n bytes, if status allows a body.
func writeSize(w http.ResponseWriter, status int, n int64) {
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	_, _ = io.CopyN(w, filler{}, n)
}

// filler is an endless reader of 'x' bytes.
type filler struct{}

func (filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
