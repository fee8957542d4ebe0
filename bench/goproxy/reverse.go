package goproxy

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// MaxIdlePerBackend is the reverse proxy's pool of idle connections per
// backend, the same as the upstream keep-alive pool given to the peers.
const MaxIdlePerBackend = 64

// ReverseOptions are ServeReverse's settings beyond its backends.
type ReverseOptions struct {
	// CertFile and KeyFile, when set, make it serve HTTPS, HTTP/2
	// included (net/http's default).
	CertFile, KeyFile string
	// MaxIdlePerBackend replaces the package's MaxIdlePerBackend when
	// above zero.
	MaxIdlePerBackend int
}

// ServeReverse serves an httputil.ReverseProxy on ln until ctx ends,
// sending requests to backends (host:port) in turn over keep-alive
// connections, with X-Forwarded-For/-Host/-Proto set.
func ServeReverse(ctx context.Context, ln net.Listener, backends []string, o ReverseOptions) error {
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		targets[i] = &url.URL{Scheme: "http", Host: b}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = MaxIdlePerBackend
	if o.MaxIdlePerBackend > 0 {
		tr.MaxIdleConnsPerHost = o.MaxIdlePerBackend
	}
	tr.MaxIdleConns = 0 // no limit across backends
	tr.ForceAttemptHTTP2 = false
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[(next.Add(1)-1)%uint64(len(targets))])
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	var err error
	if o.CertFile != "" {
		err = srv.ServeTLS(ln, o.CertFile, o.KeyFile)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
