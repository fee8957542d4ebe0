package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/admin"
	"github.com/cutoverproxy/cutover/deploy"
	"github.com/cutoverproxy/cutover/discovery"
	"github.com/cutoverproxy/cutover/discovery/docker"
	"github.com/cutoverproxy/cutover/discovery/file"
	"github.com/cutoverproxy/cutover/health"
	"github.com/cutoverproxy/cutover/internal/sendtimeout"
	"github.com/cutoverproxy/cutover/proxy"
	"github.com/cutoverproxy/cutover/proxy/front"
)

// runConfig holds the flags of "cutover run".
type runConfig struct {
	httpAddr          string
	adminAddr         string
	configPath        string
	logLevel          string
	logFormat         string
	accessLog         bool
	shutdownTimeout   time.Duration
	readHeaderTimeout time.Duration
	clientIdleTimeout time.Duration
	clientSendTimeout time.Duration
	proxy             proxy.Config
	docker            autoBool
	dockerConfig      docker.Config
	compat            string
	adminToken        string
	pprof             bool
	netHTTP           bool
	webhookTokens     webhookTokens
	tls               tlsFlags
}

func runSetup() (*flagSet, runFunc) {
	var c runConfig
	fs := newFlagSet("run", "Run the proxy: serve HTTP with the routes that the providers report.")
	fs.StringVar(&c.httpAddr, "http-addr", ":80", "`address` of the HTTP listener")
	fs.StringVar(&c.adminAddr, "admin-addr", ":8081", "`address` of the admin listener (metrics, health, API); empty turns it off")
	fs.StringVar(&c.configPath, "config", "", "`path` of a YAML file of services, watched for changes; empty means none")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "log `format`: json or console")
	fs.BoolVar(&c.accessLog, "access-log", false, "log every request at info level")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM or SIGINT, how long in-flight requests may take to finish")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send request headers")
	fs.DurationVar(&c.clientIdleTimeout, "client-idle-timeout", 120*time.Second, "how long an idle client keep-alive connection stays open")
	fs.DurationVar(&c.clientSendTimeout, "client-send-timeout", 60*time.Second, "how long a write to a client may go without sending a byte (the client reads nothing) before the connection is closed; on HTTP/2, also how long one write of a stream may take before the stream is reset; 0 turns it off")
	fs.DurationVar(&c.proxy.DialTimeout, "dial-timeout", proxy.DefaultDialTimeout, "how long connecting to a backend may take before another backend is tried")
	fs.DurationVar(&c.proxy.ResponseHeaderTimeout, "response-header-timeout", proxy.DefaultResponseHeaderTimeout, "how long a backend may take to send response headers (504 after)")
	fs.DurationVar(&c.proxy.IdleConnTimeout, "backend-idle-timeout", proxy.DefaultIdleConnTimeout, "how long an idle backend connection is kept; keep it below the backends' keep-alive timeout")
	fs.IntVar(&c.proxy.MaxIdleConnsPerHost, "backend-max-idle", proxy.DefaultMaxIdleConnsPerHost, "idle connections kept per backend")
	fs.IntVar(&c.proxy.Attempts, "attempts", proxy.DefaultAttempts, "most backends one request is tried on (1 turns retries off)")
	fs.DurationVar(&c.proxy.DrainGrace, "drain-timeout", proxy.DefaultDrainGrace, "how long WebSockets, other upgraded connections and TCP connections to a draining backend may stay open before they are closed (WebSockets with a close frame)")
	fs.StringVar(&c.proxy.TCPHost, "tcp-host", "", "`host` the tcp.listen listeners listen on; empty means all interfaces")
	fs.IntVar(&c.proxy.Outlier.Consecutive, "outlier-failures", health.DefaultConsecutive, "consecutive connection failures or 5xx answers that eject a backend")
	fs.DurationVar(&c.proxy.Outlier.BaseEjection, "outlier-ejection", health.DefaultBaseEjection, "how long a first ejection lasts; each repeat doubles it")
	fs.DurationVar(&c.proxy.Outlier.MaxEjection, "outlier-max-ejection", health.DefaultMaxEjection, "the longest ejection")
	fs.BoolVar(&c.netHTTP, "net-http", false, "serve the HTTP listener with net/http's server alone, not with cutover's HTTP/1.1 server in front of it")
	fs.BoolVar(&c.pprof, "pprof", false, "serve Go's CPU, heap and other profiles under /debug/pprof/ on the admin listener")
	fs.StringVar(&c.adminToken, "admin-token", "", "`token` that authorizes the admin API's write endpoints (deploy, rollback); without one they are off")
	fs.Var(&c.webhookTokens, "webhook-token", "`token` for POST /hooks/deploy/SERVICE: TOKEN for every service or SERVICE=TOKEN for one; repeatable, or comma-separated")
	fs.Var(&c.docker, "docker", "discover containers through the Docker engine (DOCKER_HOST, else the default socket): auto (when it answers), true or false")
	fs.BoolVar(&c.dockerConfig.ExposeByDefault, "expose-by-default", false, "route every container that does not say cutover.enable=false, not only those with cutover.enable=true")
	fs.StringVar(&c.compat, "compat", "", "also read another proxy's configuration from containers: nginx-proxy (VIRTUAL_HOST, VIRTUAL_PORT, VIRTUAL_PATH)")
	fs.DurationVar(&c.dockerConfig.Resync, "resync", docker.DefaultResync, "period of full Docker resyncs, the safety net for missed events")
	c.tls.register(fs)
	return fs, func(ctx context.Context, _, stderr io.Writer) error { return c.run(ctx, stderr) }
}

func (c *runConfig) run(ctx context.Context, stderr io.Writer) error {
	log, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.proxy.Logger = log
	c.proxy.AccessLog = c.accessLog
	c.proxy.Registerer = reg
	https, err := c.tls.setup(log, reg, &c.proxy)
	if err != nil {
		return err
	}
	defer https.close()
	px, err := proxy.New(c.proxy)
	if err != nil {
		return err
	}
	if c.configPath != "" {
		// Fail before listening when the named file cannot be read.
		if _, err := os.ReadFile(c.configPath); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
	}
	providers, err := c.providers(ctx, log)
	if err != nil {
		return err
	}
	defer closeAll(providers)
	reports := newReports(log, reg, providers)
	merger := discovery.NewMerger(discovery.MergerConfig{Providers: names(providers), OnReport: reports.report})
	// cutover's HTTP/1.1 server turns TCP keep-alive on for the
	// connections that need it (front.Server); net/http alone gets Go's
	// default.
	lc := net.ListenConfig{Control: deferAccept}
	if !c.netHTTP {
		lc.KeepAlive = -1
	}
	httpLn, err := lc.Listen(ctx, "tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	defer httpLn.Close()
	var adminLn net.Listener
	if c.adminAddr != "" {
		if adminLn, err = net.Listen("tcp", c.adminAddr); err != nil {
			return fmt.Errorf("--admin-addr: %w", err)
		}
		defer adminLn.Close()
	}
	if c.netHTTP {
		httpLn = sendtimeout.WrapListener(httpLn, c.clientSendTimeout)
	}
	pr := &process{
		cfg: c, log: log, px: px, merger: merger, providers: providers, httpLn: httpLn, adminLn: adminLn,
		problems: newProblemLog(log, reg), https: https,
	}
	var deploys admin.Deploys
	if d := dockerProvider(providers); d != nil {
		if pr.deployer, err = deploy.New(deploy.Config{Engine: deploy.NewEngine(d.Client()), Traffic: px, Logger: log, Registerer: reg}); err != nil {
			return err
		}
		deploys = deploysAdapter{pr.deployer}
	}
	pr.srv = &http.Server{
		Handler:           https.httpHandler(px),
		ReadHeaderTimeout: c.readHeaderTimeout,
		IdleTimeout:       c.clientIdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          serverErrorLog(log),
	}
	c.tls.configureHTTP(pr.srv, c.clientSendTimeout)
	https.build(px, pr.srv, c.clientSendTimeout)
	pr.http = pr.srv
	if !c.netHTTP {
		pr.http = &front.Server{Handler: pr.srv.Handler, Fallback: pr.srv, SendTimeout: c.clientSendTimeout}
	}
	pr.adminSrv = &http.Server{
		Handler: admin.New(admin.Config{
			Gatherer: reg,
			Ready:    pr.ready,
			Status:   func() admin.Status { return https.status(tcpStatus(px, status(px.Table(), reports))) },
			Logger:   log,

			Deploys:       deploys,
			Token:         c.adminToken,
			WebhookTokens: c.webhookTokens,
			Pprof:         c.pprof,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          serverErrorLog(log),
	}
	server := "net/http"
	if _, ok := pr.http.(*front.Server); ok {
		server = "cutover" // handing what it does not take to net/http's
	}
	log.Info().Str("http", httpLn.Addr().String()).Str("http_server", server).Str("https", https.addr()).
		Str("admin", addrOf(adminLn)).Str("version", version).Msg("cutover started")
	return pr.serve(ctx)
}

// httpServer serves a listener: *http.Server or *front.Server.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// process is a running cutover: what serve starts and stops.
type process struct {
	cfg       *runConfig
	log       zerolog.Logger
	px        *proxy.Proxy
	merger    *discovery.Merger
	providers []discovery.Provider
	problems  *problemLog
	srv       *http.Server // the HTTP listener's settings, and net/http's server
	http      httpServer   // what serves the HTTP listener: srv, or front.Server before it
	httpLn    net.Listener
	adminSrv  *http.Server
	adminLn   net.Listener
	stopping  atomic.Bool
	deployer  *deploy.Deployer // nil without Docker
	https     *httpsServer     // nil when HTTPS is off
}

// ready is /readyz: every provider delivered and the process is not
// shutting down, so that an outer load balancer stops sending at once.
func (pr *process) ready() bool {
	return !pr.stopping.Load() && (len(pr.providers) == 0 || pr.merger.Ready())
}

func (pr *process) apply(s discovery.Snapshot) {
	pr.px.Update(s)
	pr.https.acmeHosts(s)
	pr.problems.observe(s.Problems)
}

// serve runs everything until ctx ends, then shuts down gracefully: stop
// accepting, let in-flight requests and upgraded connections finish up to
// the shutdown timeout, then close what is left.
func (pr *process) serve(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(pr.providers)+4)
	wg.Go(func() { _ = pr.merger.Run(bg, pr.apply) })
	wg.Go(func() { _ = pr.px.Run(bg) })
	wg.Go(func() { _ = pr.px.RunTCP(bg) })
	if pr.deployer != nil {
		wg.Go(func() { _ = pr.deployer.Run(bg) })
	}
	for _, p := range pr.providers {
		wg.Go(func() {
			if err := p.Run(bg, pr.merger.Sink(p.Name())); err != nil && bg.Err() == nil {
				errc <- fmt.Errorf("provider %s: %w", p.Name(), err)
			}
		})
	}
	wg.Go(func() {
		if err := pr.http.Serve(pr.httpLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	})
	pr.https.start(bg, &wg, errc)
	if pr.adminLn != nil {
		wg.Go(func() {
			if err := pr.adminSrv.Serve(pr.adminLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin server: %w", err)
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
		pr.log.Info().Dur("timeout", pr.cfg.shutdownTimeout).Msg("shutting down: finishing in-flight requests")
	case runErr = <-errc:
	}
	pr.stopping.Store(true)
	sctx, scancel := context.WithTimeout(context.Background(), pr.cfg.shutdownTimeout)
	defer scancel()
	if pr.deployer != nil && pr.deployer.Running() > 0 {
		pr.log.Info().Int("deploys", pr.deployer.Running()).Msg("shutting down: waiting for running deploys to end")
		if err := pr.deployer.Wait(sctx); err != nil {
			pr.log.Warn().Msg("shutdown timeout reached with deploys running: they are cut short")
		}
	}
	waitHTTPS := pr.https.shutdown(sctx, pr.log)
	if err := pr.http.Shutdown(sctx); err != nil {
		pr.log.Warn().Err(err).Msg("shutdown timeout reached: closing the remaining connections")
		_ = pr.http.Close()
	}
	waitHTTPS()
	if err := pr.px.Shutdown(sctx); err != nil {
		pr.log.Warn().Err(err).Msg("shutdown timeout reached: closing the remaining WebSockets and other upgraded connections")
	}
	_ = pr.adminSrv.Close()
	cancel()
	wg.Wait()
	if runErr == nil {
		pr.log.Info().Msg("stopped")
	}
	return runErr
}

func (c *runConfig) providers(ctx context.Context, log zerolog.Logger) ([]discovery.Provider, error) {
	var ps []discovery.Provider
	if c.configPath != "" {
		ps = append(ps, file.New(c.configPath))
	}
	switch c.compat {
	case "":
	case "nginx-proxy":
		c.dockerConfig.CompatNginxProxy = true
	default:
		return nil, fmt.Errorf("--compat %q: want nginx-proxy or nothing", c.compat)
	}
	if c.docker.set && !c.docker.on {
		return ps, nil
	}
	c.dockerConfig.Logger = log
	d, err := docker.New(c.dockerConfig)
	if err != nil {
		return nil, fmt.Errorf("--docker: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	api, err := d.Ping(pctx)
	if err != nil {
		d.Close()
		if c.docker.set {
			return nil, fmt.Errorf("--docker=true: %w", err)
		}
		log.Info().Err(err).Msg("docker discovery is off: the engine does not answer (--docker=true makes this an error)")
		return ps, nil
	}
	log.Info().Str("docker", d.Host()).Str("api", api).Msg("docker discovery is on")
	return append(ps, d), nil
}

func dockerProvider(ps []discovery.Provider) *docker.Provider {
	for _, p := range ps {
		if d, ok := p.(*docker.Provider); ok {
			return d
		}
	}
	return nil
}

func closeAll(ps []discovery.Provider) {
	for _, p := range ps {
		if c, ok := p.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

func names(ps []discovery.Provider) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name()
	}
	return out
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
