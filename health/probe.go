package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody is how much of an HTTP probe's response body is read (and
// discarded) before the connection is closed: enough for the usual
// "OK" or small JSON, so that a backend is not reset while writing it.
const maxBody = 4 << 10

// userAgent identifies the probes in backends' access logs.
const userAgent = "cutover-health"

// prober probes one target with a fixed configuration.
type prober struct {
	m    *Monitor
	addr string
	cfg  Config // defaults applied
	url  string // of the HTTP probe
}

func (m *Monitor) newProber(addr string, cfg Config) *prober {
	path := cfg.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	scheme := "http://"
	if cfg.HTTPS {
		scheme = "https://"
	}
	return &prober{m: m, addr: addr, cfg: cfg, url: scheme + addr + path}
}

// probe runs one probe, bounded by the timeout, and describes its outcome.
func (p *prober) probe(ctx context.Context) Result {
	start := p.m.now()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var err error
	switch p.cfg.Mode {
	case HTTP:
		err = p.probeHTTP(ctx)
	case TCP:
		err = p.probeTCP(ctx)
	default:
		err = &probeError{msg: "no probe for mode " + p.cfg.Mode.String()}
	}
	end := p.m.now()
	if err != nil {
		err = describe(ctx, err, p.cfg.Timeout)
	}
	return Result{At: end, OK: err == nil, Err: err, Duration: end.Sub(start)}
}

// probeHTTP GETs the path and checks the status. Redirects are not
// followed: a 3xx is a status like any other.
func (p *prober) probeHTTP(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return &probeError{msg: "bad probe URL " + strconv.Quote(p.url), err: err}
	}
	req.Host = p.cfg.Host
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.m.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	// The status decides; the body is drained only to be polite, and an
	// error reading it does not fail a probe whose status passed.
	_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
	_ = resp.Body.Close()
	if resp.StatusCode < p.cfg.StatusMin || resp.StatusCode > p.cfg.StatusMax {
		return &probeError{msg: statusText(resp.StatusCode, p.cfg.StatusMin, p.cfg.StatusMax)}
	}
	return nil
}

// probeTCP opens a connection and closes it at once.
func (p *prober) probeTCP(ctx context.Context) error {
	conn, err := p.m.dial(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	_ = conn.Close()
	return nil
}

func statusText(got, lo, hi int) string {
	want := strconv.Itoa(lo)
	if hi != lo {
		want += "-" + strconv.Itoa(hi)
	}
	return fmt.Sprintf("status %d (want %s)", got, want)
}

// probeError is a probe failure told in a few words, for logs and the
// API, with the error it comes from.
type probeError struct {
	msg string
	err error
}

func (e *probeError) Error() string { return e.msg }
func (e *probeError) Unwrap() error { return e.err }

// describe turns what a probe returned into a short error: the timeout,
// or the innermost network operation that failed without the addresses
// that a target's log line already names ("connect: connection refused",
// "read: connection reset by peer").
func describe(ctx context.Context, err error, timeout time.Duration) error {
	var pe *probeError
	if errors.As(err, &pe) {
		return pe
	}
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return &probeError{msg: "timeout after " + timeout.String(), err: err}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return &probeError{msg: op.Err.Error(), err: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &probeError{msg: "read: connection closed before a response", err: err}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &probeError{msg: ue.Err.Error(), err: err}
	}
	return &probeError{msg: err.Error(), err: err}
}
