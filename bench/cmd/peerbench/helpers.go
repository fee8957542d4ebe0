package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cutoverproxy/cutover/bench/backend"
	"github.com/cutoverproxy/cutover/bench/goproxy"
	"github.com/cutoverproxy/cutover/bench/tcpload"
)

// backendCmd is "peerbench backend": the HTTP and TCP origin servers.
func backendCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:9001", "`address` of the HTTP server (GET /b/N answers N bytes)")
	tcpAddr := fs.String("tcp", "127.0.0.1:9101", "`address` of the TCP server (first byte e: echo, g: stream to the client, s: sink)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	tl, err := net.Listen("tcp", *tcpAddr)
	if err != nil {
		_ = hl.Close()
		return err
	}
	return serveBoth(ctx,
		func(ctx context.Context) error { return backend.ServeHTTP(ctx, hl) },
		func(ctx context.Context) error { return backend.ServeTCP(ctx, tl) })
}

// serveBoth runs both servers until ctx ends or one fails.
func serveBoth(ctx context.Context, a, b func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, f := range []func(context.Context) error{a, b} {
		wg.Go(func() {
			errs[i] = f(ctx)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// forwardCmd is "peerbench forward" (io.Copy) and "peerbench reverse"
// (httputil.ReverseProxy).
func forwardCmd(ctx context.Context, args []string, reverse bool) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8000", "`address` to listen on")
	to := fs.String("to", "", "comma-separated backend `addresses`, used in turn")
	var ro goproxy.ReverseOptions
	if reverse {
		fs.StringVar(&ro.CertFile, "tls-cert", "", "PEM certificate `file`: serve HTTPS (and HTTP/2) with it and -tls-key")
		fs.StringVar(&ro.KeyFile, "tls-key", "", "PEM key `file` of -tls-cert")
		fs.IntVar(&ro.MaxIdlePerBackend, "max-idle", goproxy.MaxIdlePerBackend, "idle connections kept per backend")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	backends := strings.Split(*to, ",")
	if *to == "" {
		return fmt.Errorf("-to: want at least one backend address")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if reverse {
		return goproxy.ServeReverse(ctx, ln, backends, ro)
	}
	return goproxy.Forward(ctx, ln, backends)
}

// tcploadCmd is "peerbench tcpload": the TCP load program on its own.
func tcploadCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tcpload", flag.ContinueOnError)
	mode := fs.String("mode", "echo", "`workload`: echo (round trips) or bulk (stream from the backend)")
	var cfg tcpload.Config
	fs.IntVar(&cfg.Connections, "c", tcpload.DefaultConnections, "concurrent `connections`")
	fs.DurationVar(&cfg.Duration, "duration", tcpload.DefaultDuration, "how long to run")
	fs.IntVar(&cfg.Size, "size", tcpload.DefaultSize, "echo message size in `bytes`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: peerbench tcpload [flags] HOST:PORT")
	}
	cfg.Addr = fs.Arg(0)
	var (
		r   tcpload.Result
		err error
	)
	switch *mode {
	case "echo":
		r, err = tcpload.Echo(ctx, cfg)
	case "bulk":
		r, err = tcpload.Bulk(ctx, cfg)
	default:
		return fmt.Errorf("-mode %q: want echo or bulk", *mode)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "%d round trips, %.1f MB in %s: %.0f/s, %.1f MB/s, p50 %s, p99 %s, %d connection errors\n",
		r.Ops, float64(r.Bytes)/1e6, r.Elapsed.Round(time.Millisecond), r.Rate(), r.MBps(), r.P50, r.P99, r.Errors)
	return nil
}
