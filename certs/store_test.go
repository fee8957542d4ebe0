package certs

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLoadFiles checks which files make a certificate and which are
// problems.
func TestLoadFiles(t *testing.T) {
	ca := newCA(t)
	good := leaf{serial: 7, dns: []string{"a.test"}}
	goodCrt, goodKey := ca.issue(t, good)
	_, otherKey := ca.issue(t, good)
	tests := []struct {
		name    string
		files   map[string][]byte
		names   []string // certificates in service
		problem string   // substring of the only problem; "" for none
	}{
		{name: "pair", files: map[string][]byte{"web.crt": goodCrt, "web.key": goodKey}, names: []string{"web"}},
		{name: "bundle", files: map[string][]byte{"web.pem": append(goodCrt, goodKey...)}, names: []string{"web"}},
		{name: "bundle with key first and EC parameters",
			files: map[string][]byte{"web.pem": append(append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), goodKey...), goodCrt...)},
			names: []string{"web"}},
		{name: "other files ignored", files: map[string][]byte{
			"web.crt": goodCrt, "web.key": goodKey, "README": []byte("x"), ".web.crt.swp": []byte("x"),
			"web.crt~": []byte("x"), ".hidden.pem": []byte("x"),
		}, names: []string{"web"}},
		{name: "key does not match", files: map[string][]byte{"web.crt": goodCrt, "web.key": otherKey},
			problem: "web.crt, web.key: private key does not match public key"},
		{name: "lone CA certificate ignored", files: map[string][]byte{"tls.crt": goodCrt, "tls.key": goodKey, "ca.crt": caPEM(ca)},
			names: []string{"tls"}},
		{name: "certificate without key", files: map[string][]byte{"web.crt": goodCrt}, problem: "web.crt: no private key: add web.key"},
		{name: "key without certificate", files: map[string][]byte{"web.key": goodKey}, problem: "web.key: no certificate: add web.crt"},
		{name: "garbage certificate", files: map[string][]byte{"web.crt": []byte("hello"), "web.key": goodKey},
			problem: "web.crt, web.key: failed to find any PEM data in certificate input"},
		{name: "garbage bundle", files: map[string][]byte{"web.pem": []byte("hello")}, problem: "web.pem: no PEM data"},
		{name: "bundle without key", files: map[string][]byte{"web.pem": goodCrt}, problem: "web.pem: no PRIVATE KEY block"},
		{name: "bundle without certificate", files: map[string][]byte{"web.pem": goodKey}, problem: "web.pem: no CERTIFICATE block"},
		{name: "bundle with two keys", files: map[string][]byte{"web.pem": append(append(goodCrt, goodKey...), otherKey...)},
			problem: "web.pem: more than one private key"},
		{name: "bundle and pair", files: map[string][]byte{"web.pem": append(goodCrt, goodKey...), "web.crt": goodCrt, "web.key": goodKey},
			problem: "web.pem, web.crt, web.key: both a bundle and a pair"},
		{name: "one broken among good", files: map[string][]byte{"a.pem": append(goodCrt, goodKey...), "b.pem": goodCrt},
			names: []string{"a"}, problem: "b.pem: no PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := newStore(t, Config{Dir: dir})
			if got := s.Names(); !slices.Equal(got, tt.names) {
				t.Errorf("names %q, want %q", got, tt.names)
			}
			ps := s.Problems()
			switch {
			case tt.problem == "" && len(ps) > 0:
				t.Errorf("problems %q, want none", ps)
			case tt.problem != "" && (len(ps) != 1 || !strings.Contains(ps[0], tt.problem)):
				t.Errorf("problems %q, want one with %q", ps, tt.problem)
			}
		})
	}
}

func TestChooseBySNI(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "a", leaf{serial: 1, dns: []string{"A.example.test"}})
	ca.writeBundle(t, dir, "wild", leaf{serial: 2, dns: []string{"*.example.test", "example.test"}})
	ca.writePair(t, dir, "deep", leaf{serial: 3, dns: []string{"*.eu.example.test"}})
	ca.writePair(t, dir, "cn", leaf{serial: 4, cn: "cn.test"})
	ca.writePair(t, dir, "b", leaf{serial: 5, dns: []string{"b.test"}})
	s := newStore(t, Config{Dir: dir})
	// The default is the first by name: a, serial 1.
	tests := []struct {
		sni  string
		want int64
	}{
		{"a.example.test", 1},
		{"A.EXAMPLE.TEST.", 1},
		{"x.example.test", 2},
		{"example.test", 2},
		{"x.eu.example.test", 3},
		{"x.y.example.test", 1}, // a wildcard covers one label only
		{"cn.test", 4},
		{"b.test", 5},
		{"", 1},
		{"unknown.test", 1},
	}
	for _, tt := range tests {
		if got := serial(t, s, tt.sni); got != tt.want {
			t.Errorf("SNI %q: serial %d, want %d", tt.sni, got, tt.want)
		}
	}
	// Match leaves the default to the next source.
	if c, err := s.Match(&tls.ClientHelloInfo{ServerName: "unknown.test"}); c != nil || err != nil {
		t.Errorf("Match of an unknown name: %v, %v; want nil, nil", c, err)
	}
	if c, _ := s.Fallback(&tls.ClientHelloInfo{}); c == nil || c.Leaf.SerialNumber.Int64() != 1 {
		t.Errorf("Fallback: %v, want serial 1", c)
	}
}

func TestDefaultCertificate(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name        string
		files       []string // certificate names, serial = index+1
		defaultName string
		want        int64
	}{
		{"first by name", []string{"b", "a"}, "", 2},
		{"named default", []string{"a", "default", "z"}, "", 2},
		{"flag wins", []string{"a", "default", "z"}, "z", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for i, n := range tt.files {
				ca.writePair(t, dir, n, leaf{serial: int64(i + 1), dns: []string{n + ".test"}})
			}
			s := newStore(t, Config{Dir: dir, DefaultName: tt.defaultName})
			if got := serial(t, s, ""); got != tt.want {
				t.Errorf("default serial %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "want a path"},
		{Config{Dir: filepath.Join(dir, "missing")}, "no such file"},
		{Config{Dir: file}, "not a directory"},
		{Config{Dir: dir, DefaultName: "nope"}, `default certificate "nope": no nope.crt and nope.key nor nope.pem`},
		{Config{Dir: dir, DefaultName: "a/b"}, "not a path"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): %v, want an error with %q", tt.cfg, err, tt.want)
		}
	}
}

func TestEmptyStore(t *testing.T) {
	s := newStore(t, Config{Dir: t.TempDir()})
	if c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"}); c != nil || err == nil {
		t.Errorf("empty store: %v, %v; want an error", c, err)
	}
	if c, err := s.Fallback(&tls.ClientHelloInfo{}); c != nil || err != nil {
		t.Errorf("empty store Fallback: %v, %v; want nil, nil", c, err)
	}
}

// TestExpiredAndRenewed: an expired certificate is served, and a renewed
// one for the same name takes over as soon as it is there.
func TestExpiredAndRenewed(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	past := time.Now().Add(-48 * time.Hour)
	ca.writePair(t, dir, "old", leaf{serial: 1, dns: []string{"a.test"}, notBefore: past, notAfter: past.Add(time.Hour)})
	s := newStore(t, Config{Dir: dir})
	if got := serial(t, s, "a.test"); got != 1 {
		t.Fatalf("expired certificate: serial %d, want 1", got)
	}
	if ps := s.Problems(); len(ps) != 0 {
		t.Errorf("an expired certificate is no problem: %q", ps)
	}
	ca.writePair(t, dir, "new", leaf{serial: 2, dns: []string{"a.test"}})
	ca.writePair(t, dir, "newer", leaf{serial: 3, dns: []string{"a.test"}, notAfter: time.Now().Add(48 * time.Hour)})
	s.reload()
	if got := serial(t, s, "a.test"); got != 3 {
		t.Errorf("after renewal: serial %d, want 3 (valid, latest expiry)", got)
	}
}

// TestBrokenKeepsOld: a name whose files break keeps its certificate, and
// the problem goes when they are fixed.
func TestBrokenKeepsOld(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	ca.writePair(t, dir, "web", leaf{serial: 1, dns: []string{"a.test"}})
	reg := prometheus.NewPedanticRegistry()
	s := newStore(t, Config{Dir: dir, Registerer: reg})
	_, otherKey := ca.issue(t, leaf{serial: 2, dns: []string{"a.test"}})
	writeFile(t, dir, "web.key", otherKey)
	s.reload()
	if got := serial(t, s, "a.test"); got != 1 {
		t.Errorf("broken pair: serial %d, want the old 1", got)
	}
	if ps := s.Problems(); len(ps) != 1 || !strings.Contains(ps[0], "does not match") {
		t.Errorf("problems %q, want the key mismatch", ps)
	}
	if n := gaugeValue(t, reg, "cutover_tls_certificate_problems"); n != 1 {
		t.Errorf("problems gauge %v, want 1", n)
	}
	ca.writePair(t, dir, "web", leaf{serial: 3, dns: []string{"a.test"}})
	s.reload()
	if got := serial(t, s, "a.test"); got != 3 {
		t.Errorf("fixed pair: serial %d, want 3", got)
	}
	if ps := s.Problems(); len(ps) != 0 {
		t.Errorf("problems %q after the fix, want none", ps)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cutover_tls_certificate_problems Certificate names in the certificate directory whose files cannot be used; the certificate they had before, if any, is still served. Details in the log and GET /api/v1/services.
# TYPE cutover_tls_certificate_problems gauge
cutover_tls_certificate_problems 0
# HELP cutover_tls_certificate_reloads_total Reloads of the certificate directory: success, or failure when problems were left.
# TYPE cutover_tls_certificate_reloads_total counter
cutover_tls_certificate_reloads_total{result="failure"} 1
cutover_tls_certificate_reloads_total{result="success"} 2
`), "cutover_tls_certificate_problems", "cutover_tls_certificate_reloads_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "cutover_tls_certificate_expiry_timestamp_seconds"); err != nil || n != 1 {
		t.Errorf("expiry series: %d, %v; want 1", n, err)
	}
	// Removing the files takes the certificate out, with its series.
	for _, f := range []string{"web.crt", "web.key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	s.reload()
	if got := s.Names(); len(got) != 0 {
		t.Errorf("names after removal: %q", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "cutover_tls_certificate_expiry_timestamp_seconds"); n != 0 {
		t.Errorf("expiry series after removal: %d, want 0", n)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
