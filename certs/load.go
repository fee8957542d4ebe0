package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// entry is one certificate in service.
type entry struct {
	name  string   // NAME of NAME.crt or NAME.pem
	files string   // the files it came from, for logs
	sum   [32]byte // of the files' contents: unchanged files are not parsed again
	cert  *tls.Certificate
	hosts []string // lowercase DNS names, or the common name when there are none
}

// problem is a certificate name whose files cannot be used.
type problem struct {
	name  string
	files string
	msg   string
}

func (p problem) String() string { return p.files + ": " + p.msg }

// group is the files of one certificate name.
type group struct {
	crt, key, pem string // base names; "" when absent
}

func (g group) files() string {
	var fs []string
	for _, f := range []string{g.pem, g.crt, g.key} {
		if f != "" {
			fs = append(fs, f)
		}
	}
	return strings.Join(fs, ", ")
}

// scan lists the certificate files of dir by name.
func scan(dir string) (map[string]group, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	groups := map[string]group{}
	for _, de := range des {
		base := de.Name()
		ext := filepath.Ext(base)
		name := strings.TrimSuffix(base, ext)
		if name == "" || strings.HasPrefix(base, ".") || de.IsDir() {
			continue
		}
		g := groups[name]
		switch ext {
		case ".crt":
			g.crt = base
		case ".key":
			g.key = base
		case ".pem":
			g.pem = base
		default:
			continue
		}
		groups[name] = g
	}
	return groups, nil
}

// load reads dir into a new state. A name whose files cannot be used
// keeps prev's certificate, if it had one; files whose content did not
// change are not parsed again. It logs the certificates it loads and
// removes; load itself never fails: an unreadable directory is a problem
// and keeps every certificate of prev.
func load(dir string, prev *state, log zerolog.Logger) *state {
	next := &state{entries: map[string]*entry{}, files: map[string]bool{}}
	groups, err := scan(dir)
	if err != nil {
		next.entries, next.files = prev.entries, prev.files
		next.problems = []problem{{files: dir, msg: "read directory: " + err.Error()}}
		return next
	}
	now := time.Now()
	for name, g := range groups {
		next.files[name] = true
		old := prev.entries[name]
		e, err := loadGroup(dir, name, g, old)
		if e == nil && err == nil {
			continue
		}
		if err != nil {
			next.problems = append(next.problems, problem{name: name, files: g.files(), msg: err.Error()})
			if old != nil {
				next.entries[name] = old
			}
			continue
		}
		next.entries[name] = e
		if e != old {
			logLoaded(log, e, old != nil, now)
		}
	}
	for name, e := range prev.entries {
		if next.entries[name] == nil {
			log.Info().Str("cert", name).Str("file", e.files).Msg("certificate removed")
		}
	}
	return next
}

func logLoaded(log zerolog.Logger, e *entry, replaced bool, now time.Time) {
	leaf := e.cert.Leaf
	ev := log.Info()
	msg := "certificate loaded"
	if replaced {
		msg = "certificate replaced"
	}
	switch {
	case now.After(leaf.NotAfter):
		ev, msg = log.Warn(), msg+": it has expired, clients will refuse it"
	case now.Before(leaf.NotBefore):
		ev, msg = log.Warn(), msg+": it is not valid yet, clients will refuse it"
	}
	ev.Str("cert", e.name).Str("file", e.files).Strs("hosts", e.hosts).
		Str("serial", leaf.SerialNumber.Text(16)).Time("not_after", leaf.NotAfter).Msg(msg)
}

// loadGroup reads and parses the files of one name. It returns old
// itself when their content is unchanged, and nil, nil for a lone CA
// certificate, which is no certificate to serve.
func loadGroup(dir, name string, g group, old *entry) (*entry, error) {
	var certPEM, keyPEM []byte
	var err error
	h := sha256.New()
	switch {
	case g.pem != "" && (g.crt != "" || g.key != ""):
		return nil, errors.New("both a bundle and a pair for one name: keep either " + name + ".pem or " + name + ".crt and " + name + ".key")
	case g.pem != "":
		var data []byte
		if data, err = os.ReadFile(filepath.Join(dir, g.pem)); err != nil {
			return nil, err
		}
		h.Write(data)
		if certPEM, keyPEM, err = splitBundle(data); err != nil {
			return nil, err
		}
	case g.key == "" && isCA(filepath.Join(dir, g.crt)):
		return nil, nil // a CA certificate, such as a cert-manager secret's ca.crt
	case g.key == "":
		return nil, errors.New("no private key: add " + name + ".key beside it")
	case g.crt == "":
		return nil, errors.New("no certificate: add " + name + ".crt beside it")
	default:
		if certPEM, err = os.ReadFile(filepath.Join(dir, g.crt)); err != nil {
			return nil, err
		}
		if keyPEM, err = os.ReadFile(filepath.Join(dir, g.key)); err != nil {
			return nil, err
		}
		h.Write(certPEM)
		h.Write([]byte{0})
		h.Write(keyPEM)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if old != nil && old.sum == sum {
		return old, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "tls: "))
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	hosts := hostsOf(cert.Leaf)
	if len(hosts) == 0 {
		return nil, errors.New("the certificate names no DNS host (no DNS subject alternative name nor common name)")
	}
	return &entry{name: name, files: g.files(), sum: sum, cert: &cert, hosts: hosts}, nil
}

// isCA reports whether path holds a CA certificate.
func isCA(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return false
	}
	c, err := x509.ParseCertificate(b.Bytes)
	return err == nil && c.IsCA
}

// splitBundle separates a PEM bundle into its certificates and its one
// private key. Blocks of other types (EC PARAMETERS) are left out.
func splitBundle(data []byte) (certPEM, keyPEM []byte, err error) {
	blocks := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		blocks++
		switch {
		case b.Type == "CERTIFICATE":
			certPEM = append(certPEM, pem.EncodeToMemory(b)...)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			if keyPEM != nil {
				return nil, nil, errors.New("more than one private key")
			}
			keyPEM = pem.EncodeToMemory(b)
		}
	}
	switch {
	case blocks == 0:
		return nil, nil, errors.New("no PEM data: want CERTIFICATE blocks and a PRIVATE KEY block")
	case certPEM == nil:
		return nil, nil, errors.New("no CERTIFICATE block in the bundle")
	case keyPEM == nil:
		return nil, nil, errors.New("no PRIVATE KEY block in the bundle")
	}
	return certPEM, keyPEM, nil
}

// hostsOf returns the names a certificate serves: its DNS SANs, else its
// common name, lowercased.
func hostsOf(c *x509.Certificate) []string {
	names := c.DNSNames
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName}
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n = normalize(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// normalize lowercases a host name and drops a trailing dot.
func normalize(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
