package discovery

import (
	"slices"
	"time"
)

// Snapshot is the complete desired state reported by one provider, or the
// merged state of all of them. Services are sorted by name; Problems list the
// configuration errors that were found while building it (the valid parts are
// kept). A service's routes and endpoints are read-only once the snapshot is
// made: providers share them between snapshots (the file provider keeps
// those of unchanged services), and Sort and the Merger never write them.
type Snapshot struct {
	Services []Service
	Problems []Problem
}

// Service is a named group of endpoints that share routes and options.
type Service struct {
	// Name identifies the service in metrics, logs and the admin API.
	Name string
	// Provider names the provider that reported the service ("file", "docker").
	Provider string
	// Routes are the host and path matches that lead to the service.
	Routes []Route
	// Options apply to every endpoint of the service.
	Options Options
	// Endpoints are the backends, sorted by ID.
	Endpoints []Endpoint
}

// Route matches requests by host and path prefix.
type Route struct {
	// Host is a lowercase host name without port, a wildcard "*.example.com"
	// that matches any name below example.com, or "" for the catch-all.
	Host string
	// Path is a path prefix that matches whole segments: "/api" matches
	// "/api" and "/api/users" but not "/apix". "/" matches every path.
	Path string
}

// Options are the per-service settings.
type Options struct {
	Balance  Balance
	Protocol Protocol
	Health   Health
	TLS      TLSOptions
	TCP      TCPOptions
}

// TLSOptions are the HTTPS settings of a service's routes.
type TLSOptions struct {
	// Only serves the routes on the HTTPS listener only (key tls).
	Only bool
	// Redirect answers plain-HTTP requests with a 308 to HTTPS (key
	// redirect-https).
	Redirect bool
	// HSTS is the Strict-Transport-Security value sent on HTTPS answers,
	// e.g. "max-age=31536000; includeSubDomains" (key hsts); "" for none.
	HSTS string
	// ACME obtains certificates for the routes' hosts (key tls.acme).
	ACME bool
	// Passthrough forwards TLS connections for the routes' hosts, chosen by
	// SNI on the HTTPS listener, to the backends undecrypted (key
	// tls.passthrough).
	Passthrough bool
}

// TCPOptions are the settings of a protocol tcp service.
type TCPOptions struct {
	// Listen is the port cutover listens on for the service (key
	// tcp.listen); zero for none.
	Listen int
	// ProxyProtocol is "", "v1" or "v2": send a PROXY protocol header to
	// the backends (key proxy-protocol).
	ProxyProtocol string
	// IdleTimeout closes a connection on which no byte went through, in
	// either direction, for this long (key tcp.idle-timeout); zero for
	// never.
	IdleTimeout time.Duration
}

// EndpointState says whether an endpoint may receive new requests as far as
// its provider knows; active health checks refine it in the proxy.
type EndpointState uint8

const (
	// Ready endpoints may receive requests. It is the zero value.
	Ready EndpointState = iota
	// Starting endpoints are running but their own health check (Docker's
	// HEALTHCHECK) has not passed yet.
	Starting
	// Unhealthy endpoints failed their own health check.
	Unhealthy
	// Draining endpoints are being stopped: no new requests, in-flight ones
	// finish.
	Draining
)

var endpointStateNames = [...]string{"ready", "starting", "unhealthy", "draining"}

func (s EndpointState) String() string {
	if int(s) < len(endpointStateNames) {
		return endpointStateNames[s]
	}
	return "unknown"
}

// Endpoint is one backend address of a service.
type Endpoint struct {
	// ID is stable for the life of the backend (container ID and port, or
	// the address for static backends); the proxy keeps health, counters
	// and connections by it.
	ID string
	// Name is the human name used in logs and metrics (container name and
	// port, or the address).
	Name string
	// Address is the host:port to dial.
	Address string
	// Weight is the relative share of requests; 1 or more.
	Weight int
	// State is what the provider knows about the endpoint's readiness.
	State EndpointState
}

// Problem is a configuration error found by a provider. The part of the
// configuration it names is skipped; everything else stays in effect.
type Problem struct {
	// Provider that found the problem.
	Provider string
	// Source names where: a container name, or a file path and line.
	Source string
	// Key is the configuration key or label at fault, if any.
	Key string
	// Message says what is wrong and what is expected.
	Message string
}

func (p Problem) Error() string {
	s := p.Source
	if p.Key != "" {
		if s != "" {
			s += ": "
		}
		s += p.Key
	}
	if s == "" {
		return p.Message
	}
	return s + ": " + p.Message
}

// Equal reports whether two snapshots describe the same state.
func (s Snapshot) Equal(o Snapshot) bool {
	return slices.EqualFunc(s.Services, o.Services, Service.Equal) &&
		slices.Equal(s.Problems, o.Problems)
}

// Equal reports whether two services are identical.
func (s Service) Equal(o Service) bool {
	return s.Name == o.Name && s.Provider == o.Provider && s.Options == o.Options &&
		slices.Equal(s.Routes, o.Routes) && slices.Equal(s.Endpoints, o.Endpoints)
}

// Service returns the service with the given name, or false.
func (s Snapshot) Service(name string) (Service, bool) {
	i, ok := slices.BinarySearchFunc(s.Services, name, func(v Service, n string) int {
		return compareStrings(v.Name, n)
	})
	if !ok {
		return Service{}, false
	}
	return s.Services[i], true
}

// Sort puts services, routes and endpoints in their canonical order so that
// equal states compare equal. It sorts the Services slice in place but
// never writes a service's routes or endpoints: those out of order are
// sorted on a copy, so a provider may share them between its snapshots
// (the file provider keeps the services of unchanged entries).
func (s *Snapshot) Sort() {
	for i := range s.Services {
		s.Services[i] = s.Services[i].sorted()
	}
	slices.SortFunc(s.Services, compareServices)
}

// sorted returns s with its routes and endpoints in canonical order. It
// never writes s's slices: one out of order is sorted on a copy.
func (s Service) sorted() Service {
	inOrder := true
	for i := 1; i < len(s.Routes) && inOrder; i++ {
		inOrder = compareRoutes(s.Routes[i-1], s.Routes[i]) < 0 // and no duplicate
	}
	if !inOrder {
		s.Routes = slices.Clone(s.Routes)
		slices.SortFunc(s.Routes, compareRoutes)
		s.Routes = slices.Compact(s.Routes)
	}
	if !slices.IsSortedFunc(s.Endpoints, compareEndpoints) {
		s.Endpoints = slices.Clone(s.Endpoints)
		slices.SortFunc(s.Endpoints, compareEndpoints)
	}
	return s
}

func compareServices(a, b Service) int { return compareStrings(a.Name, b.Name) }

func compareEndpoints(a, b Endpoint) int { return compareStrings(a.ID, b.ID) }

func compareRoutes(a, b Route) int {
	if c := compareStrings(a.Host, b.Host); c != 0 {
		return c
	}
	return compareStrings(a.Path, b.Path)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Protocol is how the proxy talks to a service's endpoints.
type Protocol uint8

const (
	// HTTP is HTTP/1.1 to the backend. It is the zero value.
	HTTP Protocol = iota
	// H2C is cleartext HTTP/2 to the backend (gRPC).
	H2C
	// TCP forwards raw connections.
	TCP
	// HTTPS is HTTP/1.1 or HTTP/2 over TLS to the backend.
	HTTPS
)

var protocolNames = [...]string{"http", "h2c", "tcp", "https"}

func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "unknown"
}

// Health configures active health checks. Zero fields mean the defaults
// below; the health package applies them.
type Health struct {
	// Path of the HTTP probe. Empty means no HTTP probe.
	Path string
	// Port to probe. Zero means the endpoint's port.
	Port int
	// Host header of the HTTP probe. Empty means the endpoint address.
	Host string
	// Mode is "http", "tcp" or "" (http when Path is set, otherwise none).
	Mode string
	// Interval between probes. Zero means DefaultHealthInterval.
	Interval time.Duration
	// Timeout of one probe. Zero means DefaultHealthTimeout.
	Timeout time.Duration
	// Rise is how many consecutive passes admit an endpoint. Zero means DefaultHealthRise.
	Rise int
	// Fall is how many consecutive failures take it out. Zero means DefaultHealthFall.
	Fall int
	// StatusMin and StatusMax bound the passing HTTP status codes. Zero
	// means 200–399.
	StatusMin, StatusMax int
	// SlowStart ramps a newly healthy endpoint's weight up over this time. Zero means off.
	SlowStart time.Duration
}

// Defaults of the health keys, from HAProxy's "check inter 2000 rise 2 fall 3".
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = time.Second
	DefaultHealthRise     = 2
	DefaultHealthFall     = 3
)
