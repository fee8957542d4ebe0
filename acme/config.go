package acme

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"time"

	"github.com/rs/zerolog"
)

// Directory URLs of Let's Encrypt.
const (
	// LetsEncryptCA is Let's Encrypt's production directory: publicly
	// trusted certificates, strict rate limits.
	LetsEncryptCA = "https://acme-v02.api.letsencrypt.org/directory"
	// LetsEncryptStagingCA is Let's Encrypt's staging directory: the same
	// protocol with untrusted certificates and much higher rate limits. Use
	// it to try a setup before switching to production.
	LetsEncryptStagingCA = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// Defaults of Config.
const (
	DefaultCA = LetsEncryptCA
	// DefaultRenewWindow renews a certificate when a third of its lifetime
	// is left: day 60 of Let's Encrypt's 90 days, as their documentation
	// recommends.
	DefaultRenewWindow = 1.0 / 3
	// DefaultRetryMin and DefaultRetryMax bound the wait after a failed
	// order. The wait doubles per consecutive failure; 5 minutes keeps a
	// failing host under Let's Encrypt's limit of 5 failed validations per
	// host and hour.
	DefaultRetryMin = 5 * time.Minute
	DefaultRetryMax = time.Hour
	// DefaultOrderTimeout bounds one order: account, challenge, issuance.
	DefaultOrderTimeout = 5 * time.Minute
	// DefaultConcurrency is the number of orders run at once.
	DefaultConcurrency = 4
)

// Config configures a Manager. Only DataDir is required.
//
// There is no port setting: the CA validates HTTP-01 on port 80 and
// TLS-ALPN-01 on port 443 of the host name, and cutover answers both on its
// own listeners (HTTPHandler, GetCertificate), which must be reachable
// there, directly or through a port mapping. The Manager opens no listener.
type Config struct {
	// Email is the contact of the CA account, where the CA sends notices
	// about expiring certificates and policy changes. Empty means an
	// account without contact. Each (CA, Email) pair has its own account.
	Email string

	// CA is the URL of the ACME directory. Empty means DefaultCA, Let's
	// Encrypt's production; LetsEncryptStagingCA is the one to try a setup
	// with. Enabling ACME means agreeing to the CA's terms of service.
	CA string

	// DataDir stores the account key and the certificates, under
	// DataDir/acme/. Required: it must survive restarts, or every restart
	// orders every certificate again and runs into the CA's rate limits.
	DataDir string

	// RootCAs verifies the CA's HTTPS server, for a private or test CA
	// such as pebble. Nil means the system roots.
	RootCAs *x509.CertPool

	// Logger receives the Manager's logs. The zero value logs nothing.
	Logger zerolog.Logger

	// DisableHTTP01 and DisableTLSALPN01 turn one challenge type off, for
	// a deployment where port 80 (HTTP-01) or 443 (TLS-ALPN-01) does not
	// reach cutover. Zero means both are offered; the CA picks among the
	// ones it supports, preferring TLS-ALPN-01. Both cannot be disabled.
	DisableHTTP01    bool
	DisableTLSALPN01 bool

	// RenewWindow is the fraction of a certificate's lifetime left when
	// its renewal starts, in (0, 1). Zero means DefaultRenewWindow (1/3).
	RenewWindow float64

	// RetryMin is the wait after the first failed order, doubled after
	// each further failure up to RetryMax. Zero means DefaultRetryMin (5m)
	// and DefaultRetryMax (1h).
	RetryMin time.Duration
	RetryMax time.Duration

	// OrderTimeout bounds one order. Zero means DefaultOrderTimeout (5m).
	OrderTimeout time.Duration

	// Concurrency is the number of orders run at once. Zero means
	// DefaultConcurrency (4).
	Concurrency int

	// OnEvent, when not nil, is told of every certificate loaded from
	// DataDir, issued, or failed, for metrics. It is called from the
	// Manager's goroutines, without any lock held, and must not block.
	OnEvent func(Event)
}

func (c Config) withDefaults() Config {
	if c.CA == "" {
		c.CA = DefaultCA
	}
	if c.RenewWindow == 0 {
		c.RenewWindow = DefaultRenewWindow
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	if c.OrderTimeout == 0 {
		c.OrderTimeout = DefaultOrderTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// Validate reports the first invalid field of c, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.DataDir == "" {
		return errors.New("acme: DataDir is empty: set a data directory that survives restarts (--data-dir)")
	}
	if err := validateCA(c.CA); err != nil {
		return err
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			return fmt.Errorf("acme: Email %q is not an email address (--acme-email)", c.Email)
		}
	}
	if c.DisableHTTP01 && c.DisableTLSALPN01 {
		return errors.New("acme: DisableHTTP01 and DisableTLSALPN01 are both set: no challenge type is left")
	}
	if c.RenewWindow <= 0 || c.RenewWindow >= 1 {
		return fmt.Errorf("acme: RenewWindow %v is outside (0, 1)", c.RenewWindow)
	}
	if c.RetryMin < 0 || c.RetryMax < c.RetryMin {
		return fmt.Errorf("acme: RetryMin %v and RetryMax %v: want 0 <= RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
	}
	if c.OrderTimeout < 0 {
		return fmt.Errorf("acme: OrderTimeout %v is negative", c.OrderTimeout)
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("acme: Concurrency %d is negative", c.Concurrency)
	}
	return nil
}

func validateCA(ca string) error {
	u, err := url.Parse(ca)
	if err != nil {
		return fmt.Errorf("acme: CA %q: %w (--acme-ca)", ca, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("acme: CA %q is not an https:// directory URL, such as %s (--acme-ca)", ca, DefaultCA)
	}
	return nil
}
