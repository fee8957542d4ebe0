// Package proxy is cutover's data path: the routing Table, the Backend
// objects with their live state, and the HTTP reverse proxy that forwards a
// request to a backend chosen by the service's balancer, retrying on a
// different backend when the first attempt could not reach its backend.
//
// Concurrency: a Proxy holds the current *Table in an atomic.Pointer. Update
// builds a new Table from a discovery.Snapshot and swaps it in; requests read
// the pointer once and then only immutable data and per-backend atomics, so
// the request path takes no lock, sends on no channel and writes no map.
// Backends, their health, counters and connection pools are kept by a
// stable ID across updates: a new table never resets a backend.
package proxy
