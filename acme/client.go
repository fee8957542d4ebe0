package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
	"github.com/rs/zerolog"
)

// Timeouts of the HTTP client that talks to the CA.
const (
	httpTimeout = time.Minute
	// finalizeTimeout bounds lego's wait for an order being finalized;
	// lego does not stop this wait when the context ends.
	finalizeTimeout = 30 * time.Second
)

// SetLibraryLogger sends the logs of the ACME library (lego) to l. lego
// logs through a process-wide slog logger, text on stdout by default, so
// this changes process-wide state: call it once, from main.
func SetLibraryLogger(l zerolog.Logger) {
	legolog.SetDefault(slog.New(zerolog.NewSlogHandler(l)))
}

// client is the ACME client of one Run: created on first use, because
// creating it fetches the CA's directory and registers the account, and
// created again on the next order if that failed.
type client struct {
	m         *Manager
	transport *ctxTransport

	mu sync.Mutex
	lc *lego.Client
}

func newClient(ctx context.Context, m *Manager) *client {
	return &client{m: m, transport: newTransport(ctx, m.cfg.RootCAs)}
}

// close drops the idle connections to the CA, and their goroutines.
func (c *client) close() { c.transport.base.CloseIdleConnections() }

func (c *client) get(ctx context.Context) (*lego.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lc != nil {
		return c.lc, nil
	}
	cfg := c.m.cfg
	acct, err := c.m.store.loadAccount(cfg.Email)
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	lc, err := lego.NewClient(&lego.Config{
		CADirURL:    cfg.CA,
		User:        acct,
		UserAgent:   "cutover",
		HTTPClient:  &http.Client{Transport: c.transport, Timeout: httpTimeout},
		Certificate: lego.CertificateConfig{Timeout: finalizeTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %w", cfg.CA, err)
	}
	if !cfg.DisableHTTP01 {
		_ = lc.Challenge.SetHTTP01Provider(httpProvider{c.m.challenges}) // never fails
	}
	if !cfg.DisableTLSALPN01 {
		_ = lc.Challenge.SetTLSALPN01Provider(alpnProvider{c.m.challenges}) // never fails
	}
	if acct.reg == nil {
		if err := c.register(ctx, lc, acct); err != nil {
			return nil, err
		}
	}
	c.lc = lc
	return lc, nil
}

func (c *client) register(ctx context.Context, lc *lego.Client, acct *account) error {
	reg, err := lc.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return fmt.Errorf("register account at %s: %w", c.m.cfg.CA, err)
	}
	acct.reg = reg
	log := c.m.log.With().Str("account", reg.Location).Logger()
	if err := c.m.store.saveAccount(acct); err != nil {
		log.Error().Err(err).Msg("acme: account registered but not stored: a new one is registered after a restart")
	} else {
		log.Info().Msg("acme: account registered")
	}
	return nil
}

// forget drops lc, the client of an account the CA does not know (a test
// CA restarted, an account deleted), and its stored account, so that the
// next order registers a new one. It does nothing if lc was already
// replaced, by another worker that hit the same error.
func (c *client) forget(lc *lego.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lc != lc {
		return
	}
	c.lc = nil
	path := c.m.store.accountPath(c.m.cfg.Email)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.m.log.Error().Err(err).Msg("acme: remove unknown account")
	}
	c.m.log.Warn().Str("file", path).Msg("acme: the CA does not know the stored account: registering a new one")
}

// ctxTransport gives requests made without a cancellable context (lego
// fetches the directory with context.Background) the context of Run, so
// that ending Run ends them.
type ctxTransport struct {
	ctx  context.Context
	base *http.Transport
}

func newTransport(ctx context.Context, roots *x509.CertPool) *ctxTransport {
	return &ctxTransport{ctx: ctx, base: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

func (t *ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Context().Done() == nil {
		r = r.WithContext(t.ctx)
	}
	return t.base.RoundTrip(r)
}
