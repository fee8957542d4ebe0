package proxy

import (
	"strconv"
	"sync"
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

// knownCodes have a counter slot each; other codes are counted under a
// mutex, off the common path.
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

type otherKey struct {
	method int
	code   int
}

// serviceStats are the request counters of one service name. They outlive
// table swaps for as long as the service exists.
type serviceStats struct {
	name     string
	rows     [len(methods)]atomic.Pointer[codeRow]
	retries  atomic.Uint64
	duration prometheus.Observer

	mu    sync.Mutex
	other map[otherKey]uint64
}

func (s *serviceStats) count(method string, code int) {
	m := methodIndex(method)
	if code < 0 || code >= len(codeSlot) || codeSlot[code] == 0 {
		s.mu.Lock()
		if s.other == nil {
			s.other = map[otherKey]uint64{}
		}
		s.other[otherKey{m, code}]++
		s.mu.Unlock()
		return
	}
	row := s.rows[m].Load()
	if row == nil {
		s.rows[m].CompareAndSwap(nil, new(codeRow))
		row = s.rows[m].Load()
	}
	row[codeSlot[code]-1].Add(1)
}

// collector exports the data-path metrics of the current table.
type collector struct {
	p        *Proxy
	requests *prometheus.Desc
	retries  *prometheus.Desc
	up       *prometheus.Desc
	inflight *prometheus.Desc
}

func newCollector(p *Proxy) *collector {
	return &collector{
		p: p,
		requests: prometheus.NewDesc("cutover_requests_total",
			"Requests answered, by service, status code and method. Requests that match no route have service=\"\".",
			[]string{"service", "code", "method"}, nil),
		retries: prometheus.NewDesc("cutover_retries_total",
			"Attempts made on another backend after a failed one.", []string{"service"}, nil),
		up: prometheus.NewDesc("cutover_backend_up",
			"1 when the backend may receive requests, else 0.", []string{"service", "backend"}, nil),
		inflight: prometheus.NewDesc("cutover_backend_inflight",
			"Requests the backend is serving now.", []string{"service", "backend"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.retries
	ch <- c.up
	ch <- c.inflight
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.collectRequests(ch, c.p.unrouted)
	for _, svc := range c.p.table.Load().services {
		c.collectRequests(ch, svc.stats)
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(svc.stats.retries.Load()), svc.name)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.other {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n),
			s.name, strconv.Itoa(k.code), methods[k.method])
	}
}
