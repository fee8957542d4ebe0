package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Request counters live in plain atomics on each service and are exported
// by a collector that walks the current table at scrape time: counting a
// request is one atomic add (no label lookup, no lock), and the series of a
// removed service or backend disappear with it.

// methods are the request methods counted by name; others count as OTHER.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return 9
}

// knownCodes have a counter slot each in a small row; other codes are
// counted in a large row allocated on their first use.
var knownCodes = [...]int{
	100, 101, 102, 103,
	200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
	300, 301, 302, 303, 304, 305, 307, 308,
	400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418,
	421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 499,
	500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
}

// codeSlot maps a status code to its slot in knownCodes plus one; zero
// means not known.
var codeSlot = func() (s [600]uint8) {
	for i, c := range knownCodes {
		s[c] = uint8(i + 1)
	}
	return s
}()

type codeRow [len(knownCodes)]atomic.Uint64

// Why a request was tried again on another backend.
type retryReason uint8

const (
	retryConnect retryReason = iota // the request never reached its backend
	retryTimeout                    // the backend did not answer in time
	retryError                      // the connection failed before a response
)

var retryReasons = [...]string{"connect", "timeout", "error"}

// rareRow counts the status codes outside knownCodes, by code.
type rareRow [1000]atomic.Uint64

// serviceStats are the request counters of one service name. They outlive
// table swaps for as long as the service exists.
type serviceStats struct {
	name     string
	rows     [len(methods)]atomic.Pointer[codeRow]
	duration prometheus.Observer

	retries    [len(retryReasons)]atomic.Uint64
	budget     retryBudget
	checksPass atomic.Uint64
	checksFail atomic.Uint64
	ejections  atomic.Uint64

	upgradedActive atomic.Int64
	upgradedClosed [len(closeReasons)]atomic.Uint64

	// TCP connections, of tcp.listen and TLS passthrough: see tcp_conn.go.
	tcpConns    atomic.Uint64
	tcpActive   atomic.Int64
	tcpFailures atomic.Uint64
	tcpIdle     atomic.Uint64 // connections closed by tcp.idle-timeout
	tcpIn       atomic.Uint64 // bytes from clients to backends
	tcpOut      atomic.Uint64 // bytes from backends to clients

	// Failure logs are limited to one a second per service.
	lastFailLog atomic.Int64 // unix nanos
	suppressed  atomic.Int64

	rare [len(methods)]atomic.Pointer[rareRow]
}

func (s *serviceStats) count(method string, code int) {
	m := methodIndex(method)
	if code < 0 || code >= len(codeSlot) || codeSlot[code] == 0 {
		if code < 0 || code >= len(rareRow{}) {
			code = 0
		}
		lazyRow(&s.rare[m])[code].Add(1)
		return
	}
	lazyRow(&s.rows[m])[codeSlot[code]-1].Add(1)
}

// lazyRow returns the row in p, allocating it on first use.
func lazyRow[T any](p *atomic.Pointer[T]) *T {
	row := p.Load()
	if row == nil {
		p.CompareAndSwap(nil, new(T))
		row = p.Load()
	}
	return row
}

// collector exports the data-path metrics of the current table.
type collector struct {
	p        *Proxy
	requests *prometheus.Desc
	retries  *prometheus.Desc
	up       *prometheus.Desc
	inflight *prometheus.Desc
	checks   *prometheus.Desc
	ejected  *prometheus.Desc

	upgradedActive *prometheus.Desc
	upgradedClosed *prometheus.Desc

	tcp tcpDescs
}

func newCollector(p *Proxy) *collector {
	return &collector{
		p:   p,
		tcp: newTCPDescs(),
		requests: prometheus.NewDesc("cutover_requests_total",
			"Requests answered, by service, status code and method. Requests that match no route have service=\"\".",
			[]string{"service", "code", "method"}, nil),
		retries: prometheus.NewDesc("cutover_retries_total",
			"Attempts made on another backend after a failed one, by why: connect (the request never reached the backend), timeout, error (connection failed before a response).",
			[]string{"service", "reason"}, nil),
		checks: prometheus.NewDesc("cutover_health_checks_total",
			"Active health probes, by result: pass or fail.", []string{"service", "result"}, nil),
		ejected: prometheus.NewDesc("cutover_backend_ejections_total",
			"Backends taken out by passive outlier detection.", []string{"service"}, nil),
		up: prometheus.NewDesc("cutover_backend_up",
			"1 when the backend may receive requests, else 0.", []string{"service", "backend"}, nil),
		inflight: prometheus.NewDesc("cutover_backend_inflight",
			"Requests the backend is serving now.", []string{"service", "backend"}, nil),
		upgradedActive: prometheus.NewDesc("cutover_upgraded_active",
			"Open WebSockets and other upgraded connections.", []string{"service"}, nil),
		upgradedClosed: prometheus.NewDesc("cutover_upgraded_closed_total",
			"Upgraded connections closed, by why: drained (the backend drained and the grace ran out), shutdown, client or backend (that side closed first).",
			[]string{"service", "reason"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.retries
	ch <- c.up
	ch <- c.inflight
	ch <- c.checks
	ch <- c.ejected
	ch <- c.upgradedActive
	ch <- c.upgradedClosed
	c.tcp.describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.collectRequests(ch, c.p.unrouted)
	c.tcp.collectListeners(ch, c.p.TCPListeners())
	for _, svc := range c.p.table.Load().services {
		c.collectRequests(ch, svc.stats)
		st := svc.stats
		for i, reason := range retryReasons {
			ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(st.retries[i].Load()), svc.name, reason)
		}
		ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(st.checksPass.Load()), svc.name, "pass")
		ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(st.checksFail.Load()), svc.name, "fail")
		ch <- prometheus.MustNewConstMetric(c.ejected, prometheus.CounterValue, float64(st.ejections.Load()), svc.name)
		ch <- prometheus.MustNewConstMetric(c.upgradedActive, prometheus.GaugeValue, float64(st.upgradedActive.Load()), svc.name)
		for i, reason := range closeReasons {
			ch <- prometheus.MustNewConstMetric(c.upgradedClosed, prometheus.CounterValue, float64(st.upgradedClosed[i].Load()), svc.name, reason)
		}
		if svc.servesTCP() {
			c.tcp.collect(ch, svc)
		}
		for _, b := range svc.backends {
			up := 0.0
			if b.Available() {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, svc.name, b.Name())
			ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(b.InFlight()), svc.name, b.Name())
		}
	}
}

func (c *collector) collectRequests(ch chan<- prometheus.Metric, s *serviceStats) {
	for m := range s.rows {
		row := s.rows[m].Load()
		if row == nil {
			continue
		}
		for i := range row {
			if n := row[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n),
					s.name, strconv.Itoa(knownCodes[i]), methods[m])
			}
		}
	}
	for m := range s.rare {
		row := s.rare[m].Load()
		if row == nil {
			continue
		}
		for code := range row {
			if n := row[code].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n),
					s.name, strconv.Itoa(code), methods[m])
			}
		}
	}
}
