package discovery

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RouteSpec is what a set of keys says about one route: which requests it
// matches and where they go. Providers turn it into Services and Endpoints.
type RouteSpec struct {
	// Name is the route's name in the explicit form (routes.NAME.*), or ""
	// for the short form.
	Name string
	// Hosts are lowercase host names or wildcards; empty means catch-all.
	Hosts []string
	// Path is the path prefix; "/" when not given.
	Path string
	// Port is the backend port; zero when not given.
	Port int
	// Service is the service name; "" when not given.
	Service string
	// Network names the Docker network to reach the backend on; "" when not given.
	Network string
	// Weight is the backend's weight; 1 when not given.
	Weight int
	// Options are the per-service settings.
	Options Options
}

// Routes expands the spec's hosts and path into routes.
func (r RouteSpec) Routes() []Route {
	if len(r.Hosts) == 0 {
		return []Route{{Path: r.Path}}
	}
	out := make([]Route, len(r.Hosts))
	for i, h := range r.Hosts {
		out[i] = Route{Host: h, Path: r.Path}
	}
	return out
}

// Spec is the parsed form of a set of keys.
type Spec struct {
	// Enable is the value of the "enable" key; EnableSet says whether it was given.
	Enable, EnableSet bool
	// Strategy is the deploy.strategy key: the service's default deploy
	// strategy (rolling, blue-green or recreate), or "".
	Strategy string
	// Autoredeploy is the autoredeploy key.
	Autoredeploy bool
	// Routes are the valid routes: the short form, the explicit ones, or both.
	// A route whose keys had an error is left out; the others stay.
	Routes []RouteSpec
}

// KeyError is a bad key or value.
type KeyError struct {
	Key     string
	Value   string
	Message string
}

func (e KeyError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Key, e.Value, e.Message)
}

// field identifies a key that a route may set; bits record which keys a
// route set itself and which base keys had errors.
type field uint32

const (
	fHost field = 1 << iota
	fPath
	fPort
	fService
	fNetwork
	fWeight
	fBalance
	fProtocol
	fHealthPath
	fHealthPort
	fHealthHost
	fHealthMode
	fHealthInterval
	fHealthTimeout
	fHealthRise
	fHealthFall
	fHealthStatus
	fHealthSlowStart
	fTLS
	fRedirect
	fHSTS
	fACME
	fPassthrough
	fTCPListen
	fProxyProtocol
	fTCPIdleTimeout
	fUnknown
)

// routeKeys lists the keys valid for a route, in the short form and under
// routes.NAME.
var routeKeys = map[string]field{
	"host": fHost, "path": fPath, "port": fPort, "service": fService,
	"network": fNetwork, "weight": fWeight, "balance": fBalance, "protocol": fProtocol,
	"health.path": fHealthPath, "health.port": fHealthPort, "health.host": fHealthHost,
	"health.mode": fHealthMode, "health.interval": fHealthInterval,
	"health.timeout": fHealthTimeout, "health.rise": fHealthRise, "health.fall": fHealthFall,
	"health.status": fHealthStatus, "health.slowstart": fHealthSlowStart,
	"tls": fTLS, "redirect-https": fRedirect, "hsts": fHSTS, "tls.acme": fACME, "tls.passthrough": fPassthrough,
	"tcp.listen": fTCPListen, "proxy-protocol": fProxyProtocol, "tcp.idle-timeout": fTCPIdleTimeout,
}

// KnownKeys returns every key ParseKeys accepts, for help texts and error
// messages. "routes.NAME." may precede any route key.
func KnownKeys() []string {
	keys := []string{"enable", "autoredeploy", "deploy.strategy"}
	for k := range routeKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// partial is a route being parsed: the values given and which were set or bad.
type partial struct {
	spec RouteSpec
	set  field
	bad  field
}

// ParseKeys parses a flat set of configuration keys without their prefix,
// e.g. {"host": "example.com", "routes.api.path": "/api"}. It is the one
// parser of labels and file keys.
//
// Keys at the top level form the short-form route and are the defaults of
// every named route. A named route exists for every routes.NAME.* key; the
// short-form route exists when there are no named routes, or when it sets a
// host or path of its own. A bad value or unknown key drops only the routes it
// concerns (a top-level one every route that inherits it) and is returned as
// a KeyError; all other routes are kept.
func ParseKeys(keys map[string]string) (Spec, []KeyError) {
	var spec Spec
	var errs []KeyError
	base := &partial{}
	named := map[string]*partial{}
	for _, key := range sortedKeys(keys) {
		value := strings.TrimSpace(keys[key])
		if handled, err := spec.containerKey(key, value); handled {
			if err != "" {
				errs = append(errs, KeyError{key, value, err})
			}
			continue
		}
		target, sub := base, key
		if rest, ok := strings.CutPrefix(key, "routes."); ok {
			name, k, found := strings.Cut(rest, ".")
			if !found || !validRouteName(name) {
				errs = append(errs, KeyError{key, value, "want routes.NAME.KEY with NAME of lowercase letters, digits, '-' and '_'"})
				continue
			}
			if named[name] == nil {
				named[name] = &partial{spec: RouteSpec{Name: name}}
			}
			target, sub = named[name], k
		}
		if err := target.set1(sub, value); err != "" {
			errs = append(errs, KeyError{key, value, err})
		}
	}
	spec.Routes = resolve(base, named)
	return spec, errs
}

// deployKeys are written by deploys on the containers they create; they
// are history, not configuration.
var deployKeys = map[string]bool{
	"deploy.id": true, "deploy.time": true, "deploy.image": true, "deploy.previous": true, "deploy.previous-id": true,
}

// containerKey parses a key that concerns the container rather than a
// route: enable, autoredeploy and the deploy keys. It reports whether key
// is one, and what is wrong with its value.
func (spec *Spec) containerKey(key, value string) (bool, string) {
	switch {
	case key == "enable" || key == "autoredeploy":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return true, "want true or false"
		}
		if key == "enable" {
			spec.Enable, spec.EnableSet = b, true
		} else {
			spec.Autoredeploy = b
		}
		return true, ""
	case key == "deploy.strategy":
		switch value {
		case "rolling", "blue-green", "recreate":
			spec.Strategy = value
			return true, ""
		}
		return true, "want rolling, blue-green or recreate"
	}
	return deployKeys[key], ""
}

// resolve applies the defaults of base to the named routes and returns the
// valid ones.
func resolve(base *partial, named map[string]*partial) []RouteSpec {
	var out []RouteSpec
	if len(named) == 0 || base.set&(fHost|fPath) != 0 {
		if base.bad == 0 {
			out = append(out, base.finish())
		}
	}
	for _, name := range sortedKeys(named) {
		p := named[name]
		if p.bad != 0 || base.bad&^fUnknown&^p.set != 0 {
			continue
		}
		p.inherit(base)
		out = append(out, p.finish())
	}
	return out
}

// inherit copies every value that p did not set itself from base.
func (p *partial) inherit(base *partial) {
	b, s := &base.spec, &p.spec
	copyIf := func(f field, fn func()) {
		if p.set&f == 0 && base.set&f != 0 {
			fn()
		}
	}
	copyIf(fHost, func() { s.Hosts = b.Hosts })
	copyIf(fPath, func() { s.Path = b.Path })
	copyIf(fPort, func() { s.Port = b.Port })
	copyIf(fService, func() { s.Service = b.Service })
	copyIf(fNetwork, func() { s.Network = b.Network })
	copyIf(fWeight, func() { s.Weight = b.Weight })
	copyIf(fBalance, func() { s.Options.Balance = b.Options.Balance })
	copyIf(fProtocol, func() { s.Options.Protocol = b.Options.Protocol })
	h, bh := &s.Options.Health, &b.Options.Health
	copyIf(fHealthPath, func() { h.Path = bh.Path })
	copyIf(fHealthPort, func() { h.Port = bh.Port })
	copyIf(fHealthHost, func() { h.Host = bh.Host })
	copyIf(fHealthMode, func() { h.Mode = bh.Mode })
	copyIf(fHealthInterval, func() { h.Interval = bh.Interval })
	copyIf(fHealthTimeout, func() { h.Timeout = bh.Timeout })
	copyIf(fHealthRise, func() { h.Rise = bh.Rise })
	copyIf(fHealthFall, func() { h.Fall = bh.Fall })
	copyIf(fHealthStatus, func() { h.StatusMin, h.StatusMax = bh.StatusMin, bh.StatusMax })
	copyIf(fHealthSlowStart, func() { h.SlowStart = bh.SlowStart })
	t, bt := &s.Options.TLS, &b.Options.TLS
	copyIf(fTLS, func() { t.Only = bt.Only })
	copyIf(fRedirect, func() { t.Redirect = bt.Redirect })
	copyIf(fHSTS, func() { t.HSTS = bt.HSTS })
	copyIf(fACME, func() { t.ACME = bt.ACME })
	copyIf(fPassthrough, func() { t.Passthrough = bt.Passthrough })
	copyIf(fTCPListen, func() { s.Options.TCP.Listen = b.Options.TCP.Listen })
	copyIf(fProxyProtocol, func() { s.Options.TCP.ProxyProtocol = b.Options.TCP.ProxyProtocol })
	copyIf(fTCPIdleTimeout, func() { s.Options.TCP.IdleTimeout = b.Options.TCP.IdleTimeout })
}

func (p *partial) finish() RouteSpec {
	s := p.spec
	if s.Path == "" {
		s.Path = "/"
	}
	if s.Weight == 0 {
		s.Weight = 1
	}
	return s
}

// set1 parses one key of a route and returns what is wrong with it, or "".
func (p *partial) set1(key, value string) string {
	f, ok := routeKeys[key]
	if !ok {
		p.bad |= fUnknown
		return "unknown key; known keys are " + strings.Join(KnownKeys(), ", ")
	}
	p.set |= f
	if msg := p.parse(f, value); msg != "" {
		p.bad |= f
		return msg
	}
	return ""
}

func (p *partial) parse(f field, v string) string {
	s, h := &p.spec, &p.spec.Options.Health
	var err error
	switch f {
	case fHost:
		s.Hosts, err = ParseHosts(v)
	case fPath:
		s.Path, err = ParsePath(v)
	case fPort:
		s.Port, err = parseInt(v, 1, 65535)
	case fService:
		s.Service, err = ParseServiceName(v)
	case fNetwork:
		if v == "" {
			err = fmt.Errorf("want a network name")
		}
		s.Network = v
	case fWeight:
		s.Weight, err = parseInt(v, 1, 1000)
	case fBalance:
		s.Options.Balance, err = ParseBalance(v)
	case fProtocol:
		s.Options.Protocol, err = ParseProtocol(v)
	case fHealthPath:
		if !strings.HasPrefix(v, "/") || strings.ContainsFunc(v, isSpaceOrControl) {
			err = fmt.Errorf("want a path that starts with / and has no spaces or control characters")
		}
		h.Path = v
	case fHealthPort:
		h.Port, err = parseInt(v, 1, 65535)
	case fHealthHost:
		// One name: the Host header of the probe. Empty means the default.
		h.Host = lowerASCII(v)
		if strings.HasPrefix(h.Host, "*") || strings.Contains(h.Host, ",") {
			err = fmt.Errorf("want one host name without wildcard")
		} else if h.Host != "" {
			err = checkHost(h.Host)
		}
	case fHealthMode:
		if v != "http" && v != "tcp" {
			err = fmt.Errorf("want http or tcp")
		}
		h.Mode = v
	case fHealthInterval:
		h.Interval, err = parseDuration(v)
	case fHealthTimeout:
		h.Timeout, err = parseDuration(v)
	case fHealthRise:
		h.Rise, err = parseInt(v, 1, 100)
	case fHealthFall:
		h.Fall, err = parseInt(v, 1, 100)
	case fHealthStatus:
		h.StatusMin, h.StatusMax, err = parseStatusRange(v)
	case fHealthSlowStart:
		h.SlowStart, err = parseDuration(v)
	case fTLS:
		s.Options.TLS.Only, err = parseBool(v)
	case fRedirect:
		s.Options.TLS.Redirect, err = parseBool(v)
	case fHSTS:
		s.Options.TLS.HSTS, err = parseHSTS(v)
	case fACME:
		s.Options.TLS.ACME, err = parseBool(v)
	case fPassthrough:
		s.Options.TLS.Passthrough, err = parseBool(v)
	case fTCPListen:
		s.Options.TCP.Listen, err = parseInt(v, 1, 65535)
	case fProxyProtocol:
		if v != "v1" && v != "v2" {
			err = fmt.Errorf("want v1 or v2")
		}
		s.Options.TCP.ProxyProtocol = v
	case fTCPIdleTimeout:
		s.Options.TCP.IdleTimeout, err = parseIdleTimeout(v)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// ParseHosts parses a comma-separated list of host names and wildcards
// ("*.example.com"). Names are lowercased; an empty list is allowed.
func ParseHosts(v string) ([]string, error) {
	var hosts []string
	for _, h := range strings.Split(v, ",") {
		h = lowerASCII(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if err := checkHost(h); err != nil {
			return nil, err
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	return hosts, nil
}

func checkHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, ":") {
		return fmt.Errorf("host %q: want a name without port (matching ignores the port)", h)
	}
	if len(name) > 253 || name == "" {
		return fmt.Errorf("host %q: want a host name of 1 to 253 characters", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q: want dot-separated labels of 1 to 63 letters, digits and inner '-' (wildcards only as a leading '*.')", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q: character %q is not allowed (use punycode for international names; wildcards only as a leading '*.')", h, c)
			}
		}
	}
	return nil
}

// lowerASCII lowercases only ASCII letters. strings.ToLower would fold some
// non-ASCII letters into ASCII ones (KELVIN SIGN → "k") and so accept a host
// other than the one written; here they stay non-ASCII and checkHost rejects
// them.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// ParsePath parses a path prefix: it must start with "/"; a trailing "/"
// is dropped because prefixes match whole segments.
func ParsePath(v string) (string, error) {
	if !strings.HasPrefix(v, "/") {
		return "", fmt.Errorf("want a path prefix that starts with /")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return "", fmt.Errorf("path prefix: character %q is not allowed", c)
		}
	}
	if len(v) > 1 {
		v = strings.TrimRight(v, "/")
		if v == "" {
			v = "/"
		}
	}
	return v, nil
}

// ParseServiceName checks a service name: letters, digits, '.', '_' and
// '-', starting with a letter or digit, at most 128 characters.
func ParseServiceName(v string) (string, error) {
	if v == "" || len(v) > 128 {
		return "", fmt.Errorf("want a service name of 1 to 128 characters")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return "", fmt.Errorf("service name: want letters, digits, '.', '_' and '-', starting with a letter or digit")
		}
	}
	return v, nil
}

// ParseProtocol parses a "protocol" key.
func ParseProtocol(v string) (Protocol, error) {
	for i, n := range protocolNames {
		if v == n {
			return Protocol(i), nil
		}
	}
	return 0, fmt.Errorf("want http, h2c, https or tcp")
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("want true or false")
	}
	return b, nil
}

// parseHSTS checks a Strict-Transport-Security value: max-age=SECONDS,
// optionally followed by includeSubDomains and preload.
func parseHSTS(v string) (string, error) {
	parts := strings.Split(v, ";")
	age, ok := strings.CutPrefix(strings.TrimSpace(parts[0]), "max-age=")
	if _, err := strconv.ParseUint(age, 10, 32); !ok || err != nil {
		return "", fmt.Errorf("want max-age=SECONDS, optionally followed by ; includeSubDomains and ; preload")
	}
	for _, p := range parts[1:] {
		if p = strings.TrimSpace(p); p != "includeSubDomains" && p != "preload" {
			return "", fmt.Errorf("%q: want includeSubDomains or preload after max-age", p)
		}
	}
	return v, nil
}

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 500ms, 2s or 1m")
	}
	return d, nil
}

// parseIdleTimeout parses tcp.idle-timeout: at least a second, so that
// 10ms written for 10m does not cut every connection of a database.
func parseIdleTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("want a duration of 1s or more, such as 10m or 1h (leave the key out for no timeout)")
	}
	return d, nil
}

func parseStatusRange(v string) (int, int, error) {
	lo, hi, isRange := strings.Cut(v, "-")
	a, err1 := parseInt(strings.TrimSpace(lo), 100, 599)
	b := a
	var err2 error
	if isRange {
		b, err2 = parseInt(strings.TrimSpace(hi), 100, 599)
	}
	if err1 != nil || err2 != nil || b < a {
		return 0, 0, fmt.Errorf("want a status code or range such as 200 or 200-399")
	}
	return a, b, nil
}

func validRouteName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
