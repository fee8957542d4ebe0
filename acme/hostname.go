package acme

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// hostProfile converts a host name to the ASCII form a CA issues for and
// rejects what is not a DNS name (underscores, empty or overlong labels).
// It is immutable.
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// normalizeHost returns the lowercase ASCII (punycode) form of name, or
// why HTTP-01 and TLS-ALPN-01 cannot get a certificate for it.
func normalizeHost(name string) (string, error) {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if name == "" {
		return "", errors.New("empty host name")
	}
	if strings.Contains(name, "*") {
		return "", errors.New("wildcard names need the DNS-01 challenge, which cutover does not solve: use a certificate from --cert-dir")
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return "", errors.New("IP addresses are not supported: use a DNS name")
	}
	if !utf8.ValidString(name) {
		return "", errors.New("not a valid DNS name: invalid UTF-8")
	}
	if strings.HasSuffix(name, ".") {
		return "", errors.New("not a valid DNS name: empty label")
	}
	ascii, err := hostProfile.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("not a valid DNS name: %w", err)
	}
	// A label that maps to U+FFFD gets an A-label that does not decode.
	if again, err := hostProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", fmt.Errorf("not a valid DNS name: %q does not map back to itself", ascii)
	}
	return ascii, nil
}

// serverName is the key that GetCertificate looks a TLS server name up by.
// Go's TLS server has already checked it is a host name, without a port.
func serverName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
