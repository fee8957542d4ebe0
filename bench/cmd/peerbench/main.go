// Command peerbench measures cutover beside HAProxy, nginx and Caddy (and
// Go's own httputil.ReverseProxy and an io.Copy forwarder) on one machine,
// over the same two local backends, and prints markdown tables: requests
// per second, latency, the proxy's CPU seconds per 100k requests, its peak
// RSS, and each figure's ratio to HAProxy. It also times cutover's
// reconfiguration from a file change to the new route serving.
//
//	go run ./bench/cmd/peerbench                       # everything, 3 × 10 s runs
//	go run ./bench/cmd/peerbench -duration 2s -reps 1  # a quick pass
//
// Run it from the repository: it builds ./cmd/cutover. It installs what is
// missing (haproxy, nginx and its stream module, caddy, wrk) with apt-get
// unless -install=false. Traffic stays on 127.0.0.1; every child process is
// killed and the temporary directory removed at the end, also on Ctrl-C.
//
// The same binary is also the benchmark's helper processes:
//
//	peerbench backend -http ADDR -tcp ADDR     # the origin server
//	peerbench forward -listen ADDR -to A,B     # io.Copy TCP forwarder
//	peerbench reverse -listen ADDR -to A,B     # httputil.ReverseProxy
//	peerbench tcpload -mode echo|bulk ADDR     # the TCP load program
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "peerbench: %v\n", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "backend":
			return backendCmd(ctx, args[1:])
		case "forward":
			return forwardCmd(ctx, args[1:], false)
		case "reverse":
			return forwardCmd(ctx, args[1:], true)
		case "tcpload":
			return tcploadCmd(ctx, args[1:])
		}
	}
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	return runBench(ctx, o)
}
