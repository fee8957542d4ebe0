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
// stable ID across updates: a new table never resets a backend. A service
// whose configuration is unchanged keeps its Service (backends, policy) in
// the new table, so an update costs the services that changed, plus a
// comparison of the others. A backend's cookie key, its connections
// (round tripper, dialer and the context that ends its dials: see
// Backend.connections) and a plain-HTTP backend's idle pool and net/http
// Transport are made when first needed: a table of 10,000 backends is
// built without 10,000 of each.
//
// Backends: each Backend has its own connection pool. For plain-HTTP
// backends, an HTTP/1.1 request without a body or upgrade goes through the
// fast path of h1.go, which writes the client's request straight to a
// pooled connection and reads the answer on the handler's goroutine (the
// common response heads with a parser of its own, the others with
// http.ReadResponse); everything else (bodies, upgrades, Expect, HTTP/2
// clients, h2c and https backends) goes through net/http's Transport. The
// headers a backend gets are defined once, by eachOutbound (headers.go),
// for both.
//
// Clients: Proxy is an http.Handler. On the plain-HTTP listener,
// cmd/cutover serves it with proxy/front, an HTTP/1.1 server that parses
// the common request itself and hands every other connection to net/http's
// server; HTTPS and HTTP/2 are net/http's.
package proxy
