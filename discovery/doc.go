// Package discovery holds the desired state of the proxy as plain data: a
// Snapshot of services, their routes and their endpoints. Providers
// (discovery/docker, discovery/file, …) each produce full snapshots; the
// Merger combines the newest snapshot of every provider, drops unchanged
// results and hands the merged state to the proxy.
//
// The package also owns the configuration keys shared by every provider:
// Docker labels (cutover.host, cutover.routes.api.path, …) and the YAML file
// use the same keys, parsed by ParseKeys, so a key means the same thing
// wherever it is written.
//
// Nothing here imports Docker or the proxy; all types are values that can be
// compared with Equal and copied freely.
package discovery
