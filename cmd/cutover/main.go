// Command cutover is a self-reconfiguring reverse proxy and load balancer
// for Docker. It is the only composition root of the project: it reads
// flags and environment, wires the providers, the proxy and the admin
// server together, and handles signals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// command is a subcommand. setup defines its flags and returns the
// function that runs it with their values.
type command struct {
	name    string
	summary string
	setup   func() (*flagSet, runFunc)
}

type runFunc func(ctx context.Context, stdout, stderr io.Writer) error

func commands() []command {
	return []command{
		{name: "run", summary: "run the proxy", setup: runSetup},
		{name: "deploy", summary: "replace a service's containers with a new image", setup: deploySetup},
		{name: "rollback", summary: "go back to the image a service's containers replaced", setup: rollbackSetup},
		{name: "deploys", summary: "list the deploys of a service", setup: deploysSetup},
		{name: "version", summary: "print the version", setup: versionSetup},
	}
}

// cli runs the command line and returns the exit code.
func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		fs, run := c.setup()
		if err := fs.parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.usage(stdout)
				return 0
			}
			fmt.Fprintf(stderr, "cutover %s: %v\nRun 'cutover %s --help' for the flags.\n", c.name, err, c.name)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := run(ctx, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "cutover %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "cutover: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cutover is a self-reconfiguring reverse proxy and load balancer for Docker.")
	fmt.Fprintln(w, "\nUsage: cutover COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "\n")
		fs, _ := c.setup()
		fs.usage(w)
	}
}
