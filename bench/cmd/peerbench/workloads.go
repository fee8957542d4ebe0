package main

import (
	"fmt"
	"strings"
)

// workload is one kind of traffic measured against every proxy.
type workload struct {
	name  string // flag value
	title string
	tcp   bool // TCP load program rather than wrk
	bulk  bool // TCP streaming rather than round trips
	close bool // HTTP: a new connection per request
	h2    bool // HTTP/2 over TLS with h2load rather than wrk
	path  string
}

var workloadList = []workload{
	{name: "ka100", title: "HTTP keep-alive, 100 B responses", path: "/b/100"},
	{name: "close", title: "HTTP new connection per request, 100 B responses", path: "/b/100", close: true},
	{name: "ka64k", title: "HTTP keep-alive, 64 KiB responses", path: "/b/65536"},
	{name: "h2tls", title: "HTTP/2 over TLS, 100 B responses", path: "/b/100", h2: true},
	{name: "tcpecho", title: "TCP echo, 128 B round trips", tcp: true},
	{name: "tcpbulk", title: "TCP bulk, backend to client", tcp: true, bulk: true},
}

func workloadNames() []string {
	names := make([]string, len(workloadList))
	for i, w := range workloadList {
		names[i] = w.name
	}
	return names
}

func workloadByName(name string) workload {
	for _, w := range workloadList {
		if w.name == name {
			return w
		}
	}
	panic(fmt.Sprintf("unknown workload %q", name)) // names are checked by parseOptions
}

// unit names what a workload's rate counts.
func (w workload) unit() string {
	switch {
	case w.bulk:
		return "MB/s"
	case w.tcp:
		return "round trips/s"
	default:
		return "req/s"
	}
}

// cpuUnit names what the CPU figure is normalized to.
func (w workload) cpuUnit() string {
	switch {
	case w.bulk:
		return "CPU s/GB"
	case w.tcp:
		return "CPU s/100k round trips"
	default:
		return "CPU s/100k req"
	}
}

// command describes the load of the workload, for the report.
func (w workload) command(o options) string {
	switch {
	case w.bulk:
		return fmt.Sprintf("peerbench tcpload -mode bulk -c %d -duration %s ADDR", o.bulkConns, o.duration)
	case w.tcp:
		return fmt.Sprintf("peerbench tcpload -mode echo -c %d -size 128 -duration %s ADDR", o.connections, o.duration)
	case w.h2:
		return strings.Join(h2loadArgs(o, "https://ADDR"+w.path, ""), " ")
	default:
		args := wrkArgs(o, w, "http://ADDR"+w.path)
		for i, a := range args {
			if a == "Connection: close" {
				args[i] = "'Connection: close'"
			}
		}
		return strings.Join(args, " ")
	}
}
