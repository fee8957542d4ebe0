package main

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutoverproxy/cutover/proxy"
)

func TestCertSourcesFirstCertificateWins(t *testing.T) {
	a, b := &tls.Certificate{}, &tls.Certificate{}
	none := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	failing := func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("acme: no tls-alpn-01 challenge pending")
	}
	give := func(c *tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c, nil }
	}
	tests := []struct {
		name    string
		sources certSources
		want    *tls.Certificate
		err     string
	}{
		{"first", certSources{give(a), give(b)}, a, ""},
		{"skips none", certSources{none, give(b)}, b, ""},
		{"an error ends the search", certSources{failing, give(b)}, nil, "no tls-alpn-01 challenge"},
		{"an error after none", certSources{none, failing, give(b)}, nil, "no tls-alpn-01 challenge"},
		{"none at all", certSources{none}, nil, `no certificate for server name "x.test"`},
	}
	for _, tt := range tests {
		c, err := tt.sources.certificate(&tls.ClientHelloInfo{ServerName: "x.test"})
		if c != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %p, %v; want %p, %q", tt.name, c, err, tt.want, tt.err)
		}
	}
}

func TestTLSSetup(t *testing.T) {
	empty := t.TempDir()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags tlsFlags
		on    bool
		port  int // the proxy's HTTPSPort; -1 for the listener's
		err   string
	}{
		{"no source", tlsFlags{httpsAddr: ":8443"}, false, 8443, ""},
		{"off", tlsFlags{httpsAddr: "", certDir: empty}, false, 0, ""},
		{"cert dir", tlsFlags{httpsAddr: "127.0.0.1:0", certDir: empty}, true, -1, ""},
		{"missing dir", tlsFlags{httpsAddr: "127.0.0.1:0", certDir: filepath.Join(empty, "x")}, false, 0, "--cert-dir"},
		{"default without dir", tlsFlags{httpsAddr: ":443", defaultCert: "a"}, false, 0, "--default-cert"},
		{"default not there", tlsFlags{httpsAddr: "127.0.0.1:0", certDir: empty, defaultCert: "a"}, false, 0, `--cert-dir: default certificate "a"`},
		{"backend CA not PEM", tlsFlags{backendCA: notPEM}, false, 0, "--backend-ca: " + notPEM + ": no PEM certificate"},
		{"backend CA missing", tlsFlags{backendCA: notPEM + ".x"}, false, 0, "--backend-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pc proxy.Config
			h, err := tt.flags.setup(zerolog.Nop(), prometheus.NewRegistry(), &pc)
			defer h.close()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (h != nil) != tt.on {
				t.Fatalf("HTTPS on: %v, want %v", h != nil, tt.on)
			}
			want := tt.port
			if want == -1 {
				want = portOf(h.addr())
			}
			if pc.HTTPSPort != want {
				t.Errorf("HTTPSPort %d, want %d", pc.HTTPSPort, want)
			}
		})
	}
}
