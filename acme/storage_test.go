package acme

import (
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
)

func TestCAID(t *testing.T) {
	tests := map[string]string{
		LetsEncryptCA:                     "acme-v02.api.letsencrypt.org-directory",
		LetsEncryptStagingCA:              "acme-staging-v02.api.letsencrypt.org-directory",
		"https://127.0.0.1:14000/dir":     "127.0.0.1_14000-dir",
		"https://ca.internal/acme/acme/d": "ca.internal-acme-acme-d",
		"https://[::1]:9000/../../x":      "___1__9000-..-..-x",
	}
	for in, want := range tests {
		if got := caID(in); got != want {
			t.Errorf("caID(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(caID(in), "/") {
			t.Errorf("caID(%q) contains a slash", in)
		}
	}
	for in, want := range map[string]string{"../..": "_", "": "_", "a b/c": "a_b-c", "Ops+x@Example.com": "Ops_x_Example.com"} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStorageCert(t *testing.T) {
	s := newStorage(t.TempDir(), "https://127.0.0.1:14000/dir")
	now := time.Now()
	const host = "a.example.com"

	if c, err := s.loadCert(host, now); c != nil || err != nil {
		t.Fatalf("loadCert(absent) = %v, %v; want nil, nil", c, err)
	}
	bundle := selfSigned(t, host, now.Add(-time.Hour), now.Add(time.Hour))
	if err := s.saveCert(host, bundle); err != nil {
		t.Fatal(err)
	}
	c, err := s.loadCert(host, now)
	if err != nil || c == nil || c.Leaf == nil || c.Leaf.DNSNames[0] != host {
		t.Fatalf("loadCert = %v, %v", c, err)
	}
	fi, err := os.Stat(s.certPath(host))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("certificate file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(s.certPath(host)), ".tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	if _, err := s.loadCert(host, now.Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("loadCert(expired) error = %v", err)
	}
	if err := s.saveCert("b.example.com", bundle); err != nil {
		t.Fatal(err)
	}
	if _, err := s.loadCert("b.example.com", now); err == nil || !strings.Contains(err.Error(), "b.example.com") {
		t.Errorf("loadCert(certificate of another host) error = %v", err)
	}
	if err := s.saveCert("c.example.com", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.loadCert("c.example.com", now); err == nil {
		t.Error("loadCert(garbage) succeeded")
	}
}

func TestStorageAccount(t *testing.T) {
	s := newStorage(t.TempDir(), LetsEncryptStagingCA)
	a, err := s.loadAccount("ops@example.com")
	if err != nil || a.reg != nil || a.key == nil {
		t.Fatalf("loadAccount(absent) = %+v, %v; want a new unregistered account", a, err)
	}
	a.reg = &legoacme.ExtendedAccount{Location: "https://ca.example/acct/1"}
	if err := s.saveAccount(a); err != nil {
		t.Fatal(err)
	}
	b, err := s.loadAccount("ops@example.com")
	if err != nil || b.reg == nil || b.reg.Location != a.reg.Location || b.email != "ops@example.com" {
		t.Fatalf("loadAccount = %+v, %v", b, err)
	}
	if !b.key.Public().(*ecdsa.PublicKey).Equal(a.key.Public()) {
		t.Error("stored account key differs")
	}
	// Another email is another account.
	if c, err := s.loadAccount(""); err != nil || c.reg != nil {
		t.Errorf("loadAccount(no email) = %+v, %v; want a new account", c, err)
	}

	if err := os.WriteFile(s.accountPath("bad@example.com"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.loadAccount("bad@example.com"); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Errorf("loadAccount(corrupt) error = %v", err)
	}
}

func TestParseBundleKeyMismatch(t *testing.T) {
	now := time.Now()
	a := selfSigned(t, "a.example", now, now.Add(time.Hour))
	b := selfSigned(t, "a.example", now, now.Add(time.Hour))
	// a's certificate with b's key.
	mixed := append(a[:strings.Index(string(a), "-----BEGIN EC PRIVATE KEY")], b[strings.Index(string(b), "-----BEGIN EC PRIVATE KEY"):]...)
	if _, err := parseBundle(mixed, "a.example", now); err == nil {
		t.Error("parseBundle accepted a key that does not match the certificate")
	}
}
