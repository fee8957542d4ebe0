package acme

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
)

// ACMETLS1Protocol is the ALPN protocol of TLS-ALPN-01 (RFC 8737).
const ACMETLS1Protocol = tlsalpn01.ACMETLS1Protocol

// challenges holds the answers to the CA's pending challenges, between
// lego's Present and CleanUp. It is safe for concurrent use.
type challenges struct {
	mu     sync.Mutex
	tokens map[string]httpToken        // HTTP-01, by token
	certs  map[string]*tls.Certificate // TLS-ALPN-01, by host
}

type httpToken struct {
	host, keyAuth string
}

func newChallenges() *challenges {
	return &challenges{
		tokens: make(map[string]httpToken),
		certs:  make(map[string]*tls.Certificate),
	}
}

// keyAuth returns the key authorization of token if it was issued for host.
func (c *challenges) keyAuth(host, token string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[token]
	if !ok || t.host != host {
		return "", false
	}
	return t.keyAuth, true
}

func (c *challenges) alpnCert(host string) *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.certs[host]
}

// httpProvider is lego's HTTP-01 provider: it publishes the token for
// HTTPHandler instead of starting a server.
type httpProvider struct{ c *challenges }

func (p httpProvider) Present(_ context.Context, domain, token, keyAuth string) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.tokens[token] = httpToken{host: domain, keyAuth: keyAuth}
	return nil
}

func (p httpProvider) CleanUp(_ context.Context, _, token, _ string) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	delete(p.c.tokens, token)
	return nil
}

// alpnProvider is lego's TLS-ALPN-01 provider: it publishes the challenge
// certificate for GetCertificate instead of starting a server.
type alpnProvider struct{ c *challenges }

func (p alpnProvider) Present(_ context.Context, domain, _, keyAuth string) error {
	cert, err := tlsalpn01.ChallengeCert(domain, keyAuth)
	if err != nil {
		return err
	}
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.certs[domain] = cert
	return nil
}

func (p alpnProvider) CleanUp(_ context.Context, domain, _, _ string) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	delete(p.c.certs, domain)
	return nil
}

// HTTPHandler returns a handler for cutover's HTTP listener that answers
// the CA's HTTP-01 requests, GET or HEAD /.well-known/acme-challenge/TOKEN
// for a token the Manager is presenting for the request's host, and passes
// every other request to next (nil means http.NotFoundHandler). Put it in
// front of any redirect to HTTPS: the CA's first request is plain HTTP.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, http01.PathPrefix)
		if ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			host := requestHost(r.Host)
			if keyAuth, ok := m.challenges.keyAuth(host, token); ok {
				m.log.Debug().Str("host", host).Msg("acme: answered http-01 challenge")
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, keyAuth)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requestHost returns the lowercase host of a Host header, without port.
func requestHost(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return serverName(host)
}
