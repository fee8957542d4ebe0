package proxy

import "github.com/prometheus/client_golang/prometheus"

// tcpDescs are the TCP series of the proxy's collector. They are exported
// for the services that take TCP connections (protocol tcp, or
// tls.passthrough) from the counters on serviceStats, which the
// connections update with atomic adds.
type tcpDescs struct {
	conns    *prometheus.Desc
	active   *prometheus.Desc
	bytes    *prometheus.Desc
	failures *prometheus.Desc
	idle     *prometheus.Desc
	listener *prometheus.Desc
}

func newTCPDescs() tcpDescs {
	return tcpDescs{
		conns: prometheus.NewDesc("cutover_tcp_connections_total",
			"TCP connections accepted (tcp.listen and TLS passthrough), by service.", []string{"service"}, nil),
		active: prometheus.NewDesc("cutover_tcp_active_connections",
			"TCP connections open now, by service.", []string{"service"}, nil),
		bytes: prometheus.NewDesc("cutover_tcp_bytes_total",
			"Bytes relayed over TCP connections, by direction: in (client to backend) or out (backend to client). Counted as they go, at least every 256 KiB.",
			[]string{"service", "direction"}, nil),
		failures: prometheus.NewDesc("cutover_tcp_connect_failures_total",
			"TCP connections closed because no backend could be connected to, or none was available.", []string{"service"}, nil),
		idle: prometheus.NewDesc("cutover_tcp_idle_closed_total",
			"TCP connections closed by the service's tcp.idle-timeout: no byte went through, either way, for that long.", []string{"service"}, nil),
		listener: prometheus.NewDesc("cutover_tcp_listener_up",
			"1 when the tcp.listen listener of the service is open, 0 when it could not be opened (port in use or taken by another service).",
			[]string{"service"}, nil),
	}
}

func (d *tcpDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- d.conns
	ch <- d.active
	ch <- d.bytes
	ch <- d.failures
	ch <- d.idle
	ch <- d.listener
}

func (d *tcpDescs) collect(ch chan<- prometheus.Metric, svc *Service) {
	st := svc.stats
	ch <- prometheus.MustNewConstMetric(d.conns, prometheus.CounterValue, float64(st.tcpConns.Load()), svc.name)
	ch <- prometheus.MustNewConstMetric(d.active, prometheus.GaugeValue, float64(st.tcpActive.Load()), svc.name)
	ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(st.tcpIn.Load()), svc.name, "in")
	ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(st.tcpOut.Load()), svc.name, "out")
	ch <- prometheus.MustNewConstMetric(d.failures, prometheus.CounterValue, float64(st.tcpFailures.Load()), svc.name)
	ch <- prometheus.MustNewConstMetric(d.idle, prometheus.CounterValue, float64(st.tcpIdle.Load()), svc.name)
}

// collectListeners exports the state of RunTCP's listeners. A service
// whose port is taken by another appears once, with 0.
func (d *tcpDescs) collectListeners(ch chan<- prometheus.Metric, ls []TCPListener) {
	for _, l := range ls {
		up := 1.0
		if l.Err != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(d.listener, prometheus.GaugeValue, up, l.Service)
	}
}
