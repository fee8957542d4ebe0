package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkProxyRoundTrip measures a whole proxied GET: client → proxy
// (httptest server) → backend (httptest server) and back, over keep-alive
// connections, from parallel clients. The allocations counted include the
// client's, the proxy's and the backend's HTTP servers and transports.
func BenchmarkProxyRoundTrip(b *testing.B) {
	body := []byte("hello, world\n")
	backend := startBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		_, _ = w.Write(body)
	}))
	h := newHarness(b, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", backend), endpoint("b", backend))))
	h.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 1024

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest("GET", h.front.URL+"/bench?x=1", nil)
		if err != nil {
			b.Error(err)
			return
		}
		req.Host = "app.test"
		for pb.Next() {
			res, err := h.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkServeHTTPUnrouted measures the proxy's own cost on a request
// that matches no route, without any network.
func BenchmarkServeHTTPUnrouted(b *testing.B) {
	p, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	req, err := http.NewRequest("GET", "http://nowhere.test/", nil)
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP measures the proxy's own cost on a routed GET: the
// backend's round tripper answers from memory, so no network, client or
// backend server is counted.
func BenchmarkServeHTTP(b *testing.B) {
	p, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	p.Update(snapshot(service("app", addrEndpoint("a", "127.0.0.1:1"))))
	be := p.Backend("app", "a")
	be.conns.Store(&backendConns{rt: memoryRoundTripper{}, closeIdle: func() {}, end: func() {}})
	serveLoop(b, p)
}

// serveLoop serves a GET for app.test, as net/http's server would hand it
// over, b.N times.
func serveLoop(b *testing.B, p *Proxy) {
	req, err := http.NewRequest("GET", "http://app.test/bench?x=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RequestURI = "/bench?x=1"
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}

// BenchmarkServeHTTPFastPath measures the proxy's own cost on a routed
// GET through the HTTP/1.1 fast path, to a backend that answers from
// memory over a net.Pipe (no kernel, no HTTP server counted).
func BenchmarkServeHTTPFastPath(b *testing.B) {
	p, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	p.Update(snapshot(service("app", addrEndpoint("a", "127.0.0.1:1"))))
	be := p.Backend("app", "a")
	var wg sync.WaitGroup
	defer wg.Wait()
	fast := newH1(func(context.Context, string, string) (net.Conn, error) {
		c, s := net.Pipe()
		wg.Go(func() { pipeBackend(s) })
		return c, nil
	}, 4, time.Minute, 0)
	defer fast.close()
	be.conns.Store(&backendConns{fast: fast, closeIdle: fast.closeIdle, end: func() {}})
	serveLoop(b, p)
}

// pipeBackend answers each request head read from c with a fixed
// response, until c is closed.
func pipeBackend(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	const res = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n"
	for {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
		}
		if _, err := io.WriteString(c, res); err != nil {
			return
		}
	}
}

type memoryRoundTripper struct{}

var memoryHeader = http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"13"}}

func (memoryRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        memoryHeader,
		Body:          io.NopCloser(strings.NewReader("hello, world\n")),
		ContentLength: 13,
		Request:       r,
	}, nil
}
