package proxy

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// seen is what a backend received.
type seen struct {
	method, host, path, rawPath, rawQuery, body string
	header                                      http.Header
	trailer                                     http.Header
	remote                                      string
}

// recordingBackend sends what it received on a channel and answers with
// a fixed status, header and body.
func recordingBackend(t *testing.T, got chan<- seen, status int, header http.Header, body string) string {
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{
			method: r.Method, host: r.Host, path: r.URL.Path, rawPath: r.URL.RawPath,
			rawQuery: r.URL.RawQuery, body: string(b),
			header: r.Header.Clone(), trailer: r.Trailer.Clone(), remote: r.RemoteAddr,
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	return srv.Listener.Addr().String()
}

func TestForwardRequest(t *testing.T) {
	got := make(chan seen, 1)
	addr := recordingBackend(t, got, http.StatusCreated, http.Header{"X-Answer": {"42"}}, "created")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))

	req := h.request("POST", "App.Test:8080", "/a%2Fb/c?x=1&y=%20z", strings.NewReader("payload"))
	req.Header.Set("Content-Type", "text/plain")
	res, body := h.do(req)
	s := recv(t, got)

	if s.method != "POST" || s.path != "/a/b/c" || s.rawPath != "/a%2Fb/c" || s.rawQuery != "x=1&y=%20z" || s.body != "payload" {
		t.Errorf("backend got %s %q (raw %q) query %q body %q", s.method, s.path, s.rawPath, s.rawQuery, s.body)
	}
	if s.host != "App.Test:8080" {
		t.Errorf("backend got Host %q, want the client's", s.host)
	}
	if s.header.Get("Content-Type") != "text/plain" {
		t.Errorf("backend got Content-Type %q", s.header.Get("Content-Type"))
	}
	if res.StatusCode != http.StatusCreated || body != "created" || res.Header.Get("X-Answer") != "42" {
		t.Errorf("client got %d %q, X-Answer %q", res.StatusCode, body, res.Header.Get("X-Answer"))
	}
}

func TestForwardMethods(t *testing.T) {
	got := make(chan seen, 1)
	addr := recordingBackend(t, got, http.StatusOK, nil, "")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"} {
		res, _ := h.do(h.request(m, "app.test", "/m", nil))
		if s := recv(t, got); s.method != m || res.StatusCode != http.StatusOK {
			t.Errorf("%s: backend got %s, client %d", m, s.method, res.StatusCode)
		}
	}
}

func TestForwardHeaders(t *testing.T) {
	got := make(chan seen, 1)
	addr := recordingBackend(t, got, http.StatusOK, http.Header{
		"Connection":    {"X-Back-Secret"},
		"X-Back-Secret": {"v"},
		"Keep-Alive":    {"timeout=5"},
		"Upgrade":       {"something"},
		"X-Kept":        {"yes"},
		"Set-Cookie":    {"a=1", "b=2"},
	}, "ok")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))

	req := h.request("GET", "app.test", "/", nil)
	req.Header.Set("Connection", "X-Secret, keep-alive")
	req.Header.Set("X-Secret", "s")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic eA==")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Te", "gzip")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("X-Custom", "kept")
	res, _ := h.do(req)
	s := recv(t, got)

	for _, k := range []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade"} {
		if v, ok := s.header[k]; ok {
			t.Errorf("backend got hop-by-hop header %s: %q", k, v)
		}
	}
	if v := s.header.Get("X-Custom"); v != "kept" {
		t.Errorf("backend got X-Custom %q, want kept", v)
	}
	if v := s.header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "10.0.0.1, 127.0.0.1" {
		t.Errorf("backend got X-Forwarded-For %q, want the client's address appended", v)
	}
	if v := s.header.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", v)
	}
	if v := s.header.Get("X-Forwarded-Host"); v != "app.test" {
		t.Errorf("X-Forwarded-Host = %q, want app.test", v)
	}
	if id := s.header.Get("X-Request-Id"); len(id) != 32 || !isHex(id) {
		t.Errorf("X-Request-Id = %q, want 32 hex digits", id)
	}

	for _, k := range []string{"X-Back-Secret", "Keep-Alive", "Upgrade"} {
		if v, ok := res.Header[k]; ok {
			t.Errorf("client got hop-by-hop header %s: %q", k, v)
		}
	}
	if res.Header.Get("X-Kept") != "yes" || len(res.Header.Values("Set-Cookie")) != 2 {
		t.Errorf("client got header %v", res.Header)
	}
}

func TestForwardXForwardedForWithoutPrior(t *testing.T) {
	got := make(chan seen, 1)
	addr := recordingBackend(t, got, http.StatusOK, nil, "")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	h.get("/")
	if v := recv(t, got).header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", v)
	}
}

func TestForwardTeTrailers(t *testing.T) {
	got := make(chan seen, 1)
	addr := recordingBackend(t, got, http.StatusOK, nil, "")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	req := h.request("GET", "app.test", "/", nil)
	req.Header.Set("Te", "trailers, deflate")
	h.do(req)
	if v := recv(t, got).header.Values("Te"); len(v) != 1 || v[0] != "trailers" {
		t.Errorf("backend got Te %q, want trailers", v)
	}
}

func TestForwardRequestID(t *testing.T) {
	got := make(chan seen, 1)
	addr := recordingBackend(t, got, http.StatusOK, nil, "")
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))

	ids := map[string]bool{}
	for range 3 {
		h.get("/")
		id := recv(t, got).header.Get("X-Request-Id")
		if ids[id] {
			t.Errorf("request ID %q made twice", id)
		}
		ids[id] = true
	}

	req := h.request("GET", "app.test", "/", nil)
	req.Header.Set("X-Request-Id", "client-id-1")
	h.do(req)
	if id := recv(t, got).header.Get("X-Request-Id"); id != "client-id-1" {
		t.Errorf("valid client request ID replaced by %q", id)
	}

	req = h.request("GET", "app.test", "/", nil)
	req.Header.Set("X-Request-Id", "has a space")
	h.do(req)
	if id := recv(t, got).header.Get("X-Request-Id"); id == "has a space" || len(id) != 32 {
		t.Errorf("invalid client request ID: backend got %q, want a new one", id)
	}

	req = h.request("GET", "app.test", "/", nil)
	req.Header["X-Request-Id"] = []string{"one", "two"}
	h.do(req)
	if v := recv(t, got).header.Values("X-Request-Id"); len(v) != 1 || len(v[0]) != 32 {
		t.Errorf("two client request IDs: backend got %q, want one new one", v)
	}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func TestForwardTrailers(t *testing.T) {
	gotTrailer := make(chan http.Header, 1)
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		gotTrailer <- r.Trailer.Clone()
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		// A trailer not announced before the body.
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))

	reqTrailer := http.Header{"X-Req-Sum": nil}
	req := h.request("POST", "app.test", "/", &trailerBody{
		r:   strings.NewReader("req"),
		set: func() { reqTrailer.Set("X-Req-Sum", "r1") },
	})
	req.ContentLength = -1
	req.Trailer = reqTrailer
	res, body := h.do(req)
	if body != "body" {
		t.Errorf("body = %q", body)
	}
	if v := res.Trailer.Get("X-Checksum"); v != "abc" {
		t.Errorf("client got trailer X-Checksum %q, want abc (trailers %v)", v, res.Trailer)
	}
	if v := res.Trailer.Get("X-Late"); v != "late" {
		t.Errorf("client got trailer X-Late %q, want late (trailers %v)", v, res.Trailer)
	}
	if v := recv(t, gotTrailer).Get("X-Req-Sum"); v != "r1" {
		t.Errorf("backend got request trailer X-Req-Sum %q, want r1", v)
	}
}

// trailerBody calls set when it reaches EOF, the moment a client sets
// request trailers.
type trailerBody struct {
	r   io.Reader
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

func TestStreamFlushed(t *testing.T) {
	for _, contentType := range []string{"application/octet-stream", "text/event-stream"} {
		t.Run(contentType, func(t *testing.T) {
			next := make(chan struct{})
			srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				_, _ = io.WriteString(w, "data: first\n")
				http.NewResponseController(w).Flush()
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "data: second\n")
			}))
			h := newHarness(t, Config{})
			h.p.Update(snapshot(service("app", endpoint("a", srv))))

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			res, err := h.client.Do(h.request("GET", "app.test", "/events", nil).WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			// The backend waits for next before sending the second
			// line, so the first one must arrive on its own.
			first, err := br.ReadString('\n')
			if err != nil || first != "data: first\n" {
				t.Fatalf("first chunk %q, %v", first, err)
			}
			close(next)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "data: second\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestBackendCutShort(t *testing.T) {
	for name, raw := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nshort\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				_, _ = brw.WriteString(raw)
				_ = brw.Flush()
			}))
			h := newHarness(t, Config{})
			h.p.Update(snapshot(service("app", endpoint("a", srv))))

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			res, err := h.client.Do(h.request("GET", "app.test", "/", nil).WithContext(ctx))
			if err != nil {
				return // aborted before the headers: also not a clean response
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err == nil {
				t.Fatalf("client read %q and a clean end of a response the backend cut short", b)
			}
			h.waitServed(1)
			if b := h.p.Backend("app", "a"); b.Failures() != 1 {
				t.Errorf("backend failures = %d, want 1", b.Failures())
			}
		})
	}
}

func TestForwardH2C(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.Host)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)

	svc := service("app", addrEndpoint("down", refusedAddr(t)), endpoint("a", srv))
	svc.Options.Protocol = discovery.H2C
	h := newHarness(t, Config{})
	h.p.Update(snapshot(svc))
	for range 2 {
		res, body := h.get("/")
		if res.StatusCode != http.StatusOK || body != "HTTP/2.0 app.test" {
			t.Errorf("got %d %q, want 200 over HTTP/2 with the client's host", res.StatusCode, body)
		}
	}
	if h.retries("app") == 0 {
		t.Error("no retry after the refused h2c backend")
	}
}
