// Package file is the provider of services written in a YAML file: static
// backends that Docker does not know about, or a whole configuration for a
// host without Docker.
//
// # Format
//
// The file has one top-level key, services. Each service is keyed by its
// name and takes the same keys as the cutover.* Docker labels (see
// discovery.ParseKeys), plus backends:
//
//	services:
//	  web:
//	    host: example.com, www.example.com   # or a list: [example.com, www.example.com]
//	    path: /
//	    balance: leastconn
//	    health:                              # nested maps are dotted keys: health.path
//	      path: /healthz
//	    routes:
//	      api: {host: api.example.com, path: /v1}
//	    backends: [127.0.0.1:9001, {address: 127.0.0.1:9002, weight: 2}]
//
// Nested mappings and dotted keys are the same thing (health.path: /healthz
// is allowed). backends is a list of host:port addresses or {address,
// weight} mappings; a service without backends is valid and answers 503.
// A service without host is the catch-all. The container keys port,
// service, network, weight and enable make no sense in a file and are
// errors that say what to write instead. balance, protocol and health
// belong to the service: every route of a service must agree on them.
//
// # Errors
//
// Any problem rejects the whole file, never a part of it: a half-applied
// file is harder to reason about than the previous good one. The error
// joins every problem found, each as "file:line: dotted.key: message", and
// the provider reports it with Sink.Fail; the last good configuration stays
// in effect. Two services that claim the same host and path are an error
// too, not a matter of precedence.
//
// # Watching
//
// The provider watches the file's directory, not just the file: editors
// (vim, sed -i) save by writing a temporary file and renaming it over the
// original, and a Kubernetes ConfigMap volume swaps a symlink, so the file
// that the path names is replaced rather than written. Events are filtered
// by the file's name, and any other event in the directory triggers a
// reload only if the path now resolves to another file. The file itself is
// watched too, because writes to a file bind-mounted into a container are
// reported only on the file. (Bind-mount the directory, not the file: an
// editor's rename on the host replaces the file, and a container that has
// the old file mounted never sees the new one.)
//
// Reloads wait for a 10ms lull in events, so that one save is read once and
// whole, and content equal to the last read is not reported again. A file
// that is removed is reported with Sink.Fail and picked up again when it
// reappears; the directory itself must stay. All of it runs on Run's
// goroutine; the watcher is closed when Run returns.
package file
