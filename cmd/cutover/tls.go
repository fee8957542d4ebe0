package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/acme"
	"github.com/cutoverproxy/cutover/admin"
	"github.com/cutoverproxy/cutover/certs"
	"github.com/cutoverproxy/cutover/discovery"
	"github.com/cutoverproxy/cutover/internal/sendtimeout"
	"github.com/cutoverproxy/cutover/proxy"
)

// tlsFlags are the flags of the HTTPS side of "cutover run".
type tlsFlags struct {
	httpsAddr   string
	certDir     string
	defaultCert string
	backendCA   string
	h2c         bool
	acmeEmail   string
	acmeCA      string
	acmeRoot    string
	dataDir     string
}

func (f *tlsFlags) register(fs *flagSet) {
	fs.StringVar(&f.httpsAddr, "https-addr", ":443", "`address` of the HTTPS listener, started when there is a certificate source (--cert-dir); empty turns it off")
	fs.StringVar(&f.certDir, "cert-dir", "", "`directory` of certificates, NAME.crt with NAME.key or NAME.pem bundles, chosen by SNI and watched for changes")
	fs.StringVar(&f.defaultCert, "default-cert", "", "`NAME` of the certificate for clients that ask for no known name; default: default.crt or default.pem, else the first by name")
	fs.StringVar(&f.backendCA, "backend-ca", "", "PEM `file` of CA certificates trusted for protocol https backends, besides the system's")
	fs.BoolVar(&f.h2c, "h2c", false, "serve cleartext HTTP/2 with prior knowledge on the HTTP listener, besides HTTP/1.1")
	fs.StringVar(&f.dataDir, "data-dir", "", "`directory` where cutover keeps state: ACME accounts and certificates; ACME is off without it")
	fs.StringVar(&f.acmeEmail, "acme-email", "", "contact `email` of the ACME account")
	fs.StringVar(&f.acmeCA, "acme-ca", acme.DefaultCA, "ACME directory `URL`; Let's Encrypt's staging CA is "+acme.LetsEncryptStagingCA)
	fs.StringVar(&f.acmeRoot, "acme-ca-root", "", "PEM `file` of CA certificates to trust when talking to the ACME CA, besides the system's (a test CA such as pebble)")
}

// certSources are where the certificates of the HTTPS listener come from,
// tried in order at each handshake: the first certificate returned wins.
// A source returns nil, nil when it has none for the hello, and an error
// when no other source may answer it (ACME's TLS-ALPN-01 hello with no
// challenge pending): the error ends the handshake.
type certSources []func(*tls.ClientHelloInfo) (*tls.Certificate, error)

func (cs certSources) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	for _, src := range cs {
		c, err := src(hello)
		if err != nil {
			return nil, err
		}
		if c != nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no certificate for server name %q", hello.ServerName)
}

// serverTLSConfig is the TLS configuration of the HTTPS listener: Go's
// modern defaults (cipher suites, curves) from TLS 1.2 up, HTTP/2 or
// HTTP/1.1 by ALPN.
func serverTLSConfig(sources certSources) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: sources.certificate,
	}
}

// httpsServer is the HTTPS listener of a running cutover. A nil
// *httpsServer means HTTPS is off: its methods do nothing.
type httpsServer struct {
	store   *certs.Store // nil without --cert-dir
	sources certSources
	acme    *acme.Manager // nil without --data-dir
	raw     net.Listener  // TCP, before passthrough and TLS
	srv     *http.Server
	ln      net.Listener // what srv serves
}

// setup runs before the proxy is built: it reads the backend CA, loads
// the certificate directory, listens on --https-addr and sets the proxy's
// HTTPSPort (for redirects) and BackendRootCAs. It returns nil, and logs
// why, when HTTPS is off.
func (f *tlsFlags) setup(log zerolog.Logger, reg prometheus.Registerer, pc *proxy.Config) (*httpsServer, error) {
	if f.backendCA != "" {
		pool, err := readCAs(f.backendCA)
		if err != nil {
			return nil, fmt.Errorf("--backend-ca: %w", err)
		}
		pc.BackendRootCAs = pool
	}
	if f.defaultCert != "" && f.certDir == "" {
		return nil, errors.New("--default-cert: names a certificate of --cert-dir, which is not set")
	}
	pc.HTTPSPort = portOf(f.httpsAddr)
	if f.httpsAddr == "" {
		log.Info().Msg("HTTPS is off: --https-addr is empty")
		return nil, nil
	}
	h := &httpsServer{}
	if f.dataDir != "" {
		// First: the CA's TLS-ALPN-01 hellos must get the challenge
		// certificate, and a name's ACME certificate wins over the
		// directory's.
		m, err := f.acmeManager(log)
		if err != nil {
			return nil, err
		}
		h.acme = m
		h.sources = append(h.sources, m.GetCertificate)
	}
	if f.certDir != "" {
		store, err := certs.New(certs.Config{
			Dir: f.certDir, DefaultName: f.defaultCert, Registerer: reg,
			Logger: log.With().Str("component", "certs").Logger(),
		})
		if err != nil {
			return nil, fmt.Errorf("--cert-dir: %w", err)
		}
		if len(store.Names()) == 0 {
			log.Warn().Str("dir", f.certDir).Msg("no certificate in --cert-dir yet: TLS handshakes fail until one is added")
		}
		h.store = store
		h.sources = append(h.sources, store.Match)
	}
	if h.store != nil {
		// Last: the directory's default certificate, for the names that
		// no source has.
		h.sources = append(h.sources, h.store.Fallback)
	}
	if len(h.sources) == 0 {
		log.Info().Msg("HTTPS is off: no certificate source (--cert-dir or --data-dir for ACME)")
		return nil, nil
	}
	// A TLS client speaks first too (its ClientHello).
	lc := net.ListenConfig{Control: deferAccept}
	raw, err := lc.Listen(context.Background(), "tcp", f.httpsAddr)
	if err != nil {
		return nil, fmt.Errorf("--https-addr: %w", err)
	}
	h.raw = raw
	pc.HTTPSPort = raw.Addr().(*net.TCPAddr).Port
	return h, nil
}

// acmeManager makes the ACME manager of --data-dir.
func (f *tlsFlags) acmeManager(log zerolog.Logger) (*acme.Manager, error) {
	cfg := acme.Config{
		Email: f.acmeEmail, CA: f.acmeCA, DataDir: f.dataDir,
		Logger: log.With().Str("component", "acme").Logger(),
	}
	if f.acmeRoot != "" {
		pool, err := readCAs(f.acmeRoot)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		cfg.RootCAs = pool
	}
	acme.SetLibraryLogger(log.With().Str("component", "acme").Logger())
	m, err := acme.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("--data-dir, --acme-*: %w", err)
	}
	return m, nil
}

// acmeHosts gives the ACME manager the hosts of the routes labelled
// tls.acme=true.
func (h *httpsServer) acmeHosts(s discovery.Snapshot) {
	if h == nil || h.acme == nil {
		return
	}
	var hosts []string
	for _, svc := range s.Services {
		if !svc.Options.TLS.ACME {
			continue
		}
		for _, r := range svc.Routes {
			if r.Host != "" {
				hosts = append(hosts, r.Host)
			}
		}
	}
	h.acme.SetHosts(hosts)
}

// httpHandler is the handler of the HTTP listener: ACME's HTTP-01
// challenges first, when ACME is on.
func (h *httpsServer) httpHandler(next http.Handler) http.Handler {
	if h == nil || h.acme == nil {
		return next
	}
	return h.acme.HTTPHandler(next)
}

// readCAs reads a PEM file of CA certificates and adds them to the
// system's roots.
func readCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in the file", path)
	}
	return pool, nil
}

// portOf returns the port of a listen address, or 0 when it has none.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// configureHTTP adds cleartext HTTP/2 (prior knowledge) to the HTTP
// server with --h2c, its streams' writes bounded by the send timeout send.
func (f *tlsFlags) configureHTTP(srv *http.Server, send time.Duration) {
	if !f.h2c {
		return
	}
	srv.Handler = sendtimeout.Streams(srv.Handler, send)
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	srv.HTTP2 = http2Config()
}

// http2Config is the HTTP/2 configuration of the client listeners: Go's
// defaults but for the largest frame a client may send, which is the
// protocol's default of 16 KiB (what clients use anyway) instead of Go's
// 1 MiB. It bounds what one connection makes the proxy buffer, and a
// frame over it is refused with FRAME_SIZE_ERROR, as h2spec expects.
func http2Config() *http.HTTP2Config {
	return &http.HTTP2Config{MaxReadFrameSize: 16 << 10}
}

// build makes the HTTPS server: the proxy's handler with the HTTP
// server's limits, on a TLS listener over the connections that the proxy
// does not pass through, whose writes (and HTTP/2 streams' writes) have the
// send timeout send.
func (h *httpsServer) build(px *proxy.Proxy, base *http.Server, send time.Duration) {
	if h == nil {
		return
	}
	cfg := serverTLSConfig(h.sources)
	if h.acme != nil {
		cfg.NextProtos = append(cfg.NextProtos, h.acme.NextProtos()...)
	}
	h.srv = &http.Server{
		Handler:           sendtimeout.Streams(px, send),
		TLSConfig:         cfg,
		ReadHeaderTimeout: base.ReadHeaderTimeout,
		IdleTimeout:       base.IdleTimeout,
		MaxHeaderBytes:    base.MaxHeaderBytes,
		ErrorLog:          base.ErrorLog,
		HTTP2:             http2Config(),
	}
	// TLS passthrough routes take their connections (by SNI) first.
	h.ln = tls.NewListener(sendtimeout.WrapListener(px.Passthrough(h.raw), send), cfg)
}

// start runs the server and the certificate watcher on wg until bg ends;
// a server that fails reports to errc.
func (h *httpsServer) start(bg context.Context, wg *sync.WaitGroup, errc chan<- error) {
	if h == nil {
		return
	}
	if h.store != nil {
		wg.Go(func() { _ = h.store.Run(bg) })
	}
	if h.acme != nil {
		wg.Go(func() { _ = h.acme.Run(bg) })
	}
	wg.Go(func() {
		if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("https server: %w", err)
		}
	})
}

// shutdown starts a graceful shutdown of the server, at the same time as
// the HTTP server's, and returns a function that waits for it.
func (h *httpsServer) shutdown(ctx context.Context, log zerolog.Logger) (wait func()) {
	if h == nil || h.srv == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.srv.Shutdown(ctx); err != nil {
			log.Warn().Err(err).Msg("shutdown timeout reached: closing the remaining HTTPS connections")
			_ = h.srv.Close()
		}
	}()
	return func() { <-done }
}

// close closes the listener when the server never ran.
func (h *httpsServer) close() {
	if h != nil {
		_ = h.raw.Close()
	}
}

// addr is the listener's address, "" when HTTPS is off.
func (h *httpsServer) addr() string {
	if h == nil {
		return ""
	}
	return h.raw.Addr().String()
}

// status adds the certificate directory's problems to the admin API's
// document.
func (h *httpsServer) status(st admin.Status) admin.Status {
	if h == nil {
		return st
	}
	if h.store != nil {
		for _, p := range h.store.Problems() {
			st.Problems = append(st.Problems, admin.Problem{Provider: "cert-dir", Source: h.store.Dir(), Message: p})
		}
	}
	if h.acme != nil {
		for _, hs := range h.acme.Status() {
			if hs.LastError != "" {
				st.Problems = append(st.Problems, admin.Problem{Provider: "acme", Source: hs.Host,
					Message: fmt.Sprintf("%s: %s", hs.State, hs.LastError)})
			}
		}
	}
	return st
}
