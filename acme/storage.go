package acme

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// storage is the layout of one CA's files, DataDir/acme/<ca>/:
//
//	account-<email>.json      the account key and URL (mode 0600)
//	certificates/<host>.pem   certificate chain, then its key (mode 0600)
//
// Each file is replaced atomically (written aside, then renamed), so a
// crash leaves the old or the new file, never half of one. Certificates
// are kept per CA so that switching from staging to production never
// serves a staging certificate. A storage is a value, safe for concurrent
// use on distinct files.
type storage struct {
	dir string
}

func newStorage(dataDir, ca string) storage {
	return storage{dir: filepath.Join(dataDir, "acme", caID(ca))}
}

// caID names a CA's directory after its URL: host and path, such as
// "acme-v02.api.letsencrypt.org-directory".
func caID(ca string) string {
	u, err := url.Parse(ca)
	if err != nil || u.Host == "" {
		return safeName(ca)
	}
	return safeName(u.Host + u.Path)
}

// safeName maps s to a file name: letters, digits, '.', '-' and '_' only.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		case r == '/':
			return '-'
		}
		return '_'
	}, s)
	s = strings.Trim(s, "-.")
	if s == "" {
		return "_"
	}
	return s
}

func (s storage) accountPath(email string) string {
	name := "default"
	if email != "" {
		name = safeName(strings.ToLower(email))
	}
	return filepath.Join(s.dir, "account-"+name+".json")
}

// certPath is the file of host, a name that normalizeHost accepted: DNS
// letters, digits, '-' and '.', never empty, "." or "..".
func (s storage) certPath(host string) string {
	return filepath.Join(s.dir, "certificates", host+".pem")
}

// loadCert returns the stored certificate of host, nil if there is none,
// or an error if the file is unusable (unreadable, not a key pair, not for
// host, expired at now).
func (s storage) loadCert(host string, now time.Time) (*tls.Certificate, error) {
	path := s.certPath(host)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cert, err := parseBundle(data, host, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

func (s storage) saveCert(host string, bundle []byte) error {
	return writeFileAtomic(s.certPath(host), bundle)
}

// parseBundle parses PEM data holding a certificate chain and its private
// key, and checks that the leaf is for host and not expired at now.
func parseBundle(data []byte, host string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return nil, err
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate expired at %s", leaf.NotAfter.Format(time.RFC3339))
	}
	return &cert, nil
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file and a rename, creating the directories (mode 0700).
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
