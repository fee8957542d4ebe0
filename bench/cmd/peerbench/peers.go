package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// peer is one proxy under test (or the no-proxy baseline).
type peer struct {
	name  string // flag value
	title string // table row
	// bin is the program the peer needs on the machine; "" for the ones
	// peerbench builds or is.
	bin       string
	http, tcp bool
	h2        bool // serves HTTP/2 over TLS (the h2tls workload)
	// tcpByTrying: whether the peer serves TCP is found out by trying
	// (cutover's tcp.listen is being built).
	tcpByTrying bool
	// start writes the peer's configuration under dir and starts it,
	// listening on listen (127.0.0.1:PORT) for workload w. The baseline has
	// no start: its clients go straight to the first backend.
	start func(b *bench, dir string, w workload, listen string) (*process, error)
}

func peerList() []peer {
	return []peer{
		{name: "haproxy", title: "HAProxy", bin: "haproxy", http: true, h2: true, tcp: true, start: startHAProxy},
		{name: "nginx", title: "nginx", bin: "nginx", http: true, h2: true, tcp: true, start: startNginx},
		{name: "caddy", title: "Caddy", bin: "caddy", http: true, h2: true, start: startCaddy},
		{name: "traefik", title: "Traefik", http: true, h2: true, tcp: true, start: startTraefik},
		{name: "cutover", title: "cutover", http: true, h2: true, tcp: true, tcpByTrying: true, start: startCutover},
		{name: "httputil", title: "httputil.ReverseProxy", http: true, h2: true, start: startReverse},
		{name: "iocopy", title: "io.Copy forwarder", tcp: true, start: startForward},
		{name: "noproxy", title: "no proxy (one backend)", http: true, tcp: true},
	}
}

func peerNames() []string {
	var names []string
	for _, p := range peerList() {
		names = append(names, p.name)
	}
	return names
}

func (p peer) serves(w workload) bool {
	switch {
	case w.tcp:
		return p.tcp
	case w.h2:
		return p.h2
	}
	return p.http
}

// idlePool is the idle connections per backend that the peers with a
// bounded pool (nginx per worker, Caddy, httputil) are given: as many as
// wrk has connections, and for HTTP/2 more than the requests h2load keeps
// in flight (connections × streams), so that no proxy closes and dials
// backend connections under the load. cutover keeps 256 and Traefik 200
// by default; HAProxy does not bound its pool.
func idlePool(w workload) int {
	if w.h2 {
		return 256
	}
	return 64
}

// writeFile writes a configuration file and returns its path.
func writeFile(dir, name, content string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// haproxyConfig is HAProxy's configuration: two threads (one per core, its
// default here too), no logging, keep-alive on both sides with idle backend
// connections shared between clients (http-reuse always), X-Forwarded-For
// added like the other proxies, round robin. Timeouts are generous: they
// only bound a broken run. For HTTP/2 the listener takes TLS with ALPN
// h2 and http/1.1.
func haproxyConfig(w workload, listen string, backends []string, t tlsFiles) string {
	var sb strings.Builder
	mode := "http"
	if w.tcp {
		mode = "tcp"
	}
	fmt.Fprintf(&sb, `global
	nbthread 2
	maxconn 8000

defaults
	mode %s
	timeout connect 5s
	timeout client 60s
	timeout server 60s
`, mode)
	if !w.tcp {
		sb.WriteString("\toption http-keep-alive\n\toption forwardfor\n\thttp-reuse always\n")
	}
	bind := listen
	if w.h2 {
		bind += " ssl crt " + t.bundle + " alpn h2,http/1.1"
	}
	fmt.Fprintf(&sb, `
frontend fe
	bind %s
	default_backend be

backend be
	balance roundrobin
`, bind)
	for i, b := range backends {
		fmt.Fprintf(&sb, "\tserver s%d %s\n", i+1, b)
	}
	return sb.String()
}

func startHAProxy(b *bench, dir string, w workload, listen string) (*process, error) {
	backends := b.backends(w)
	cfg, err := writeFile(dir, "haproxy.cfg", haproxyConfig(w, listen, backends, b.tls))
	if err != nil {
		return nil, err
	}
	return b.sup.start("haproxy", filepath.Join(dir, "haproxy.log"), nil, b.bins["haproxy"], "-db", "-f", cfg)
}

// nginxConfig is nginx's configuration: two worker processes, no access
// log, HTTP/1.1 keep-alive to the backends with a pool of 64 idle
// connections, keepalive_requests raised on both sides so that neither
// closes a connection every 1,000 requests (HAProxy, Caddy and cutover do
// not), X-Forwarded-For added, round robin; the stream module for TCP.
// Temporary files and the pid file go to dir. Everything else is nginx's
// default (proxy buffering on, 4k/8k buffers). For HTTP/2 the server
// listens with ssl and http2.
func nginxConfig(dir string, w workload, listen string, backends []string, streamModule string, t tlsFiles) string {
	var sb strings.Builder
	if w.tcp {
		fmt.Fprintf(&sb, "load_module %s;\n", streamModule)
	}
	fmt.Fprintf(&sb, `worker_processes 2;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;

events {
	worker_connections 10000;
}
`, dir)
	upstream := ""
	for _, b := range backends {
		upstream += fmt.Sprintf("\t\tserver %s;\n", b)
	}
	if w.tcp {
		fmt.Fprintf(&sb, `
stream {
	upstream be {
%s	}
	server {
		listen %s;
		proxy_pass be;
	}
}
`, upstream, listen)
		return sb.String()
	}
	listenArgs, tlsLines := listen, ""
	if w.h2 {
		listenArgs += " ssl http2"
		tlsLines = fmt.Sprintf("\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;", t.cert, t.key)
	}
	fmt.Fprintf(&sb, `
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;

	upstream be {
%[2]s		keepalive %[5]d;
		keepalive_requests 1000000;
	}
	server {
		listen %[3]s;%[4]s
		location / {
			proxy_pass http://be;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		}
	}
}
`, dir, upstream, listenArgs, tlsLines, idlePool(w))
	return sb.String()
}

func startNginx(b *bench, dir string, w workload, listen string) (*process, error) {
	cfg, err := writeFile(dir, "nginx.conf", nginxConfig(dir, w, listen, b.backends(w), nginxStreamModule, b.tls))
	if err != nil {
		return nil, err
	}
	return b.sup.start("nginx", filepath.Join(dir, "nginx.log"), nil,
		b.bins["nginx"], "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log"))
}

// caddyConfig is Caddy's configuration: no admin endpoint, no automatic
// HTTPS, no access log (Caddy logs requests only when a site says `log`),
// runtime log at WARN, reverse_proxy to both backends in round robin with
// 64 idle connections per backend (Caddy's default is 32) and its default
// keep-alive. Caddy adds X-Forwarded-For/-Proto/-Host by itself.
//
// For HTTP/2 the site takes the benchmark's certificate (tls CERT KEY);
// Caddy offers h2 on TLS by default.
func caddyConfig(w workload, listen string, backends []string, t tlsFiles) string {
	_, port, _ := strings.Cut(listen, ":")
	tlsLine := ""
	if w.h2 {
		tlsLine = fmt.Sprintf("\n\ttls %s %s", t.cert, t.key)
	}
	return fmt.Sprintf(`{
	admin off
	auto_https off
	log {
		level WARN
	}
}

:%s {
	bind 127.0.0.1%s
	reverse_proxy %s {
		lb_policy round_robin
		transport http {
			keepalive_idle_conns_per_host %d
		}
	}
}
`, port, tlsLine, strings.Join(backends, " "), idlePool(w))
}

func startCaddy(b *bench, dir string, w workload, listen string) (*process, error) {
	cfg, err := writeFile(dir, "Caddyfile", caddyConfig(w, listen, b.backends(w), b.tls))
	if err != nil {
		return nil, err
	}
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	return b.sup.start("caddy", filepath.Join(dir, "caddy.log"), env,
		b.bins["caddy"], "run", "--config", cfg, "--adapter", "caddyfile")
}

// traefikConfig is Traefik's static configuration (one entry point, the
// file provider, warnings only, no access log, no version check nor usage
// report) and its dynamic one: a catch-all router to both backends, round
// robin (its default), with Traefik's default transport (keep-alive, 200
// idle connections per host); for TCP a router for every connection
// (HostSNI(`*`)) to both backends. Traefik adds X-Forwarded-For by itself.
//
// For HTTP/2 the router has `tls: {}` and the benchmark's certificate is
// the default store's; Traefik offers h2 on TLS by default.
func traefikConfig(dir string, w workload, listen string, backends []string, t tlsFiles) (static, dynamic string) {
	static = fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  bench:
    address: "%s"
log:
  level: WARN
providers:
  file:
    filename: "%s"
    watch: false
`, listen, filepath.Join(dir, "dynamic.yaml"))
	var servers strings.Builder
	for _, be := range backends {
		if w.tcp {
			fmt.Fprintf(&servers, "          - address: \"%s\"\n", be)
		} else {
			fmt.Fprintf(&servers, "          - url: \"http://%s\"\n", be)
		}
	}
	rule, kind := "PathPrefix(`/`)", "http"
	if w.tcp {
		rule, kind = "HostSNI(`*`)", "tcp"
	}
	routerTLS, certs := "", ""
	if w.h2 {
		routerTLS = "\n      tls: {}"
		certs = fmt.Sprintf(`tls:
  stores:
    default:
      defaultCertificate:
        certFile: "%[1]s"
        keyFile: "%[2]s"
`, t.cert, t.key)
	}
	dynamic = fmt.Sprintf(`%s:
  routers:
    bench:
      entryPoints: [bench]
      rule: "%s"
      service: bench%s
  services:
    bench:
      loadBalancer:
        servers:
%s%s`, kind, rule, routerTLS, servers.String(), certs)
	return static, dynamic
}

func startTraefik(b *bench, dir string, w workload, listen string) (*process, error) {
	static, dynamic := traefikConfig(dir, w, listen, b.backends(w), b.tls)
	if _, err := writeFile(dir, "dynamic.yaml", dynamic); err != nil {
		return nil, err
	}
	cfg, err := writeFile(dir, "traefik.yaml", static)
	if err != nil {
		return nil, err
	}
	return b.sup.start("traefik", filepath.Join(dir, "traefik.log"), []string{"HOME=" + dir},
		b.bins["traefik"], "--configfile="+cfg)
}

// cutoverConfig is cutover's YAML file: one catch-all HTTP service over both
// backends (round robin, the default), or one TCP service on tcp.listen.
func cutoverConfig(w workload, listen string, backends []string) string {
	list := "[" + strings.Join(backends, ", ") + "]"
	if w.tcp {
		_, port, _ := strings.Cut(listen, ":")
		return fmt.Sprintf("services:\n  benchtcp:\n    protocol: tcp\n    tcp.listen: %s\n    backends: %s\n", port, list)
	}
	return fmt.Sprintf("services:\n  bench:\n    backends: %s\n", list)
}

// startCutover runs cutover with its defaults (metrics, passive health,
// retries all on) except: no Docker, no access log (its default too), log
// level warn.
func startCutover(b *bench, dir string, w workload, listen string) (*process, error) {
	cfg, err := writeFile(dir, "cutover.yaml", cutoverConfig(w, listen, b.backends(w)))
	if err != nil {
		return nil, err
	}
	httpAddr := listen
	var extra []string
	if w.tcp || w.h2 {
		if httpAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if w.h2 {
		extra = []string{"--https-addr", listen, "--cert-dir", b.tls.certDir}
	}
	return b.startCutoverWith(dir, cfg, httpAddr, extra...)
}

func (b *bench) startCutoverWith(dir, cfg, httpAddr string, extra ...string) (*process, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	argv := append([]string{b.cutover, "run",
		"--http-addr", httpAddr, "--admin-addr", admin, "--config", cfg,
		"--docker=false", "--access-log=false", "--log-level", "warn"}, extra...)
	return b.sup.start("cutover", filepath.Join(dir, "cutover.log"), nil, argv...)
}

func startReverse(b *bench, dir string, w workload, listen string) (*process, error) {
	argv := []string{b.self, "reverse", "-listen", listen, "-to", strings.Join(b.backends(w), ",")}
	if w.h2 {
		argv = append(argv, "-tls-cert", b.tls.cert, "-tls-key", b.tls.key, "-max-idle", strconv.Itoa(idlePool(w)))
	}
	return b.sup.start("httputil", filepath.Join(dir, "httputil.log"), nil, argv...)
}

func startForward(b *bench, dir string, w workload, listen string) (*process, error) {
	return b.sup.start("iocopy", filepath.Join(dir, "iocopy.log"), nil,
		b.self, "forward", "-listen", listen, "-to", strings.Join(b.backends(w), ","))
}
