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
//
// # Reloading a large file
//
// Parsing YAML is the slow part of a reload: some 35ms for a file of a
// thousand services. A reload parses again only the services whose text
// changed, so that an edit to one service costs the parse of that one, and
// gives the same snapshot, or the same error, as Parse of the whole file.
//
// To find the services without parsing the file, the reload cuts it by
// its lines: each service is the text from its key, at the indentation of
// the first key under services, to the next such key; comments and blank
// lines go with the service above them. The services of the last reload
// are kept by their text, without the line they were on: a service moved
// by an edit above it is not parsed again. A service whose text is new is
// parsed alone, as a file "services:\n" followed by its text, and the lines
// of its nodes are moved to those of the whole file; a service with a
// problem is never kept, so that the problem names the line of each
// version. What concerns several services is checked on the whole file
// each time, by the code of Parse: names given twice, and routes that two
// services claim.
//
// Only a file plainly in the usual shape is cut; any other is parsed
// whole, as Parse does. The shape is: comments and blank lines, the line
// "services:" (maybe with a comment), then for each service a key of
// letters, digits, '.', '_' and '-' followed by ':', at the indentation of
// the first key, and lines indented deeper, comments and blank lines. The
// file is parsed whole when it has any other line, such as another
// top-level key, a flow mapping or list at the top two levels, a quoted
// or explicit (?) service key, a list item, or a document marker (---,
// ...) or directive (%); when it has a tab, a carriage return, another
// control character, a byte order mark or a Unicode line separator
// anywhere, or is not UTF-8; and when a service's text is not YAML on its
// own, is not exactly one key and its value, or has an anchor (&), an
// alias (*), a merge key (<<) or a block scalar (| or >). The next reload
// in the shape starts from the services of the last reload that was.
package file
