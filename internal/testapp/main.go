// Command testapp is the HTTP backend that cutover's end-to-end tests and
// benchmarks run behind the proxy, on the host or as a FROM scratch image.
//
// Every path not listed below answers "<name> <version> <method> <path>\n"
// with X-Backend and X-Version headers, echoes the forwarding headers it saw
// as X-Seen-*, and reports the request body's length in X-Body-Bytes. Query
// parameters shape the response: ?sleep=DURATION, ?status=NNN, ?size=N,
// ?stream=N. The other endpoints are:
//
//	/healthz          200 "ok" when healthy and ready, 503 otherwise
//	/control/healthy  ?v=true|false flips the health reported by /healthz
//	/control/fail     ?v=true|false makes every echo response a 500
//	                  (/healthz still passes)
//	/control/hang     ?v=true|false: while on, every request but /control/*
//	                  and /stats hangs, /healthz included: it is accepted
//	                  and read (an echo request is counted) and gets no
//	                  answer until hang is switched off (then it is served)
//	                  or the client goes away, as from a hung application
//	/control/flap     ?v=true|false: while on, /healthz alternates pass and
//	                  fail on each call, the first call passing; health
//	                  that /control/healthy or -ready-after fails still fails
//	/ws               WebSocket echo, text and binary
//	/stats            JSON {"name","version","requests"}: requests counts
//	                  the echo requests, not /healthz, /ws, /control/*,
//	                  /stats or /data
//	/data             the file data.log under -data-dir (e.g. a volume);
//	                  ?write=VALUE first appends VALUE and a newline to it;
//	                  404 without -data-dir
//
// The control endpoints take GET or POST. Flags, each with an environment
// equivalent (see -h): -addr, -name, -version, -healthy (start healthy),
// -ready-after DURATION (/healthz fails for that long after start),
// -flap-health (start with /control/flap on; TESTAPP_FLAP_HEALTH=true),
// -ignore-sigterm, -data-dir DIRECTORY, -tcp-addr ADDRESS (a TCP echo
// server besides: each connection is greeted with the name and a newline,
// then gets back what it sends; off when empty, the default).
//
// With -probe it is instead a one-shot health client for Docker's
// HEALTHCHECK, since a scratch image has no curl.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// run is main without the process exit: it returns the exit code.
func run(args []string, getenv func(string) string, stderr io.Writer) int {
	log := zerolog.New(stderr).With().Timestamp().Logger()
	cfg, err := parseConfig(args, getenv, os.Hostname, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if cfg.probe != "" {
		return probeExit(cfg.probe, stderr)
	}
	ctx, stop := signalContext(cfg.ignoreSIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		log.Error().Err(err).Str("addr", cfg.addr).Msg("listen")
		return 1
	}
	a := newApp(cfg, time.Now)
	log.Info().Str("addr", ln.Addr().String()).Str("name", cfg.name).
		Str("version", cfg.version).Msg("serving")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tcpDone, err := startTCPEcho(ctx, cfg)
	if err != nil {
		log.Error().Err(err).Str("tcp_addr", cfg.tcpAddr).Msg("listen")
		return 1
	}
	code := 0
	if err := serve(ctx, ln, a, DefaultShutdownTimeout); err != nil {
		log.Error().Err(err).Msg("serve")
		code = 1
	}
	cancel()
	if err := <-tcpDone; err != nil {
		log.Error().Err(err).Msg("serve tcp echo")
		code = 1
	}
	log.Info().Msg("stopped")
	return code
}

// startTCPEcho serves the TCP echo of -tcp-addr until ctx ends; the
// channel receives its result. Without -tcp-addr it receives nil at once.
func startTCPEcho(ctx context.Context, cfg config) (<-chan error, error) {
	done := make(chan error, 1)
	if cfg.tcpAddr == "" {
		done <- nil
		return done, nil
	}
	ln, err := net.Listen("tcp", cfg.tcpAddr)
	if err != nil {
		return nil, err
	}
	go func() { done <- serveTCPEcho(ctx, ln, cfg.name) }()
	return done, nil
}

// signalContext is cancelled by SIGINT and, unless ignoreTerm, by SIGTERM.
// With ignoreTerm SIGTERM is ignored outright, so that tests can exercise a
// container that only a stop timeout (SIGKILL) ends.
func signalContext(ignoreTerm bool) (context.Context, context.CancelFunc) {
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
		return signal.NotifyContext(context.Background(), os.Interrupt)
	}
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
