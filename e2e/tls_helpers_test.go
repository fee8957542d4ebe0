package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues the certificates of the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate as a PEM file, for curl --cacert
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue returns the PEM of a certificate with the given serial for hosts
// (names, wildcards or IP addresses), and of its key.
func (ca *testCA) issue(t *testing.T, serial int64, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// writePair writes dir/NAME.crt and dir/NAME.key, each the way editors
// save (a temporary file renamed over the old one), the key first.
func (ca *testCA) writePair(t *testing.T, dir, name string, serial int64, hosts ...string) {
	t.Helper()
	c, k := ca.issue(t, serial, hosts...)
	replaceFile(t, filepath.Join(dir, name+".key"), k)
	replaceFile(t, filepath.Join(dir, name+".crt"), c)
}

func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// pool returns a pool with the CA alone.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// startTLS runs cutover with an HTTPS listener on a free port of
// 127.0.0.1 and the certificates of certDir, and returns the instance
// and the HTTPS listener's address.
func startTLS(t *testing.T, yaml, certDir string, extraArgs ...string) (*instance, string) {
	t.Helper()
	args := append([]string{"--https-addr", "127.0.0.1:0", "--cert-dir", certDir}, extraArgs...)
	in := start(t, yaml, args...)
	started := in.waitLog(time.Second, func(l map[string]any) bool { return l["message"] == "cutover started" })
	addr, _ := started["https"].(string)
	if addr == "" {
		t.Fatalf("no https address in %v", started)
	}
	return in, addr
}

// serialFor makes a TLS handshake with addr for serverName ("" sends no
// SNI) and returns the serial of the certificate it got. The certificate
// is not verified: the test compares serials.
func serialFor(t *testing.T, addr, serverName string) int64 {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{ServerName: serverName, InsecureSkipVerify: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("handshake for %q: %v", serverName, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// httpsClient is a client that trusts ca and connects every host name to
// addr, as curl --resolve does.
func httpsClient(ca *testCA, addr string) *http.Client {
	dial := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.pool()},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dial.DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// needCurl skips the test when curl or its HTTP/2 support is missing,
// except under CI=true, where it fails.
func needCurl(t *testing.T) {
	t.Helper()
	out, err := exec.Command("curl", "--version").Output()
	switch {
	case err != nil:
		skipOrFail(t, "curl is not installed: %v", err)
	case !strings.Contains(string(out), "HTTP2"):
		skipOrFail(t, "curl has no HTTP/2 support:\n%s", out)
	}
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// curlRaw runs curl with args and returns its combined output.
func curlRaw(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput()
	return string(out), err
}

// curlResult is what curl reported.
type curlResult struct {
	version string // %{http_version}: 1.1, 2
	code    int
	body    string
	headers string
}

// curl runs curl with args and the URL last, and returns the response.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	hdr := filepath.Join(t.TempDir(), "headers")
	s, err := curlRaw(append([]string{"--silent", "--show-error", "--max-time", "10", "--dump-header", hdr,
		"--write-out", "\n%{http_version} %{http_code}"}, args...)...)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, s)
	}
	i := strings.LastIndexByte(s, '\n')
	var r curlResult
	if _, err := fmt.Sscanf(s[i+1:], "%s %d", &r.version, &r.code); err != nil {
		t.Fatalf("curl output %q: %v", s, err)
	}
	r.body = s[:i]
	h, _ := os.ReadFile(hdr)
	r.headers = string(h)
	return r
}
