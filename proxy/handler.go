package proxy

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverproxy/cutover/balancer"
)

// ServeHTTP routes the request and forwards it to a backend of the matched
// service, trying other backends when an attempt fails in a way that is
// safe to retry.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchange{start: time.Now(), w: w, r: r}
	switch {
	case r.Method == http.MethodConnect:
		p.fail(&ex, errConnect)
		return
	case hasDotSegment(r.URL.Path):
		// A backend would resolve them to a path that another route may
		// own: /api/../admin must not reach the /api service.
		p.fail(&ex, errBadPath)
		return
	case r.ProtoMajor == 2 && strings.IndexByte(r.URL.RawQuery, ' ') >= 0:
		// net/http's HTTP/2 server lets a space through in the query of
		// :path (the path is escaped again on the way out, the query is
		// not); in an HTTP/1.1 request line to a backend it would end
		// the target early.
		p.fail(&ex, errBadTarget)
		return
	}
	ex.svc = p.table.Load().Lookup(r.Host, r.URL.Path)
	switch {
	case ex.svc == nil:
		p.fail(&ex, errNoRoute)
	case r.TLS == nil && ex.svc.tls.Redirect:
		p.redirectHTTPS(&ex)
	case r.TLS == nil && ex.svc.tls.Only:
		p.fail(&ex, errNoRoute)
	default:
		p.forward(&ex)
	}
}

// redirectHTTPS answers a plain-HTTP request with a permanent redirect
// (308: the method and body are kept) to the same URL over HTTPS.
func (p *Proxy) redirectHTTPS(ex *exchange) {
	host := stripPort(ex.r.Host)
	if p.cfg.HTTPSPort != 0 && p.cfg.HTTPSPort != 443 {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(p.cfg.HTTPSPort))
	}
	u := url.URL{Scheme: "https", Host: host, Path: ex.r.URL.Path, RawPath: ex.r.URL.RawPath, RawQuery: ex.r.URL.RawQuery}
	ex.w.Header()["Location"] = []string{u.String()}
	ex.code = http.StatusPermanentRedirect
	ex.w.WriteHeader(ex.code)
	p.done(ex)
}

// hasDotSegment reports whether a (decoded) path has a "." or ".."
// segment.
func hasDotSegment(path string) bool {
	for i := 0; i < len(path); i++ {
		if path[i] != '.' || i > 0 && path[i-1] != '/' {
			continue
		}
		j := i + 1
		if j < len(path) && path[j] == '.' {
			j++
		}
		if j == len(path) || path[j] == '/' {
			return true
		}
	}
	return false
}

// exchange is one client request on its way through the proxy.
type exchange struct {
	start   time.Time
	w       http.ResponseWriter
	r       *http.Request
	out     *http.Request
	body    *requestBody
	id      string
	svc     *Service
	backend *Backend
	fast    bool // the HTTP/1.1 fast path may carry the request
	code    int
	bytes   int64
}

func (p *Proxy) forward(ex *exchange) {
	ex.id = p.ids.of(ex.r)
	var err error
	// Requests the HTTP/1.1 fast path carries are written straight from
	// the client's; the outbound request for net/http's Transport is made
	// when a backend needs it.
	if ex.fast = fastEligible(ex.r); !ex.fast {
		if ex.out, err = p.outbound(ex); err != nil {
			p.fail(ex, err)
			return
		}
	}
	ex.svc.stats.budget.request(ex.start)
	var tried balancer.Tried
	var attempted [2 * maxAttempts]*Backend
	var reason retryReason
	err = errNoBackend
	// A dial cut short because its backend left the configuration cost the
	// backend nothing and the client no time: it does not count as an
	// attempt. picks bounds the loop all the same.
	for picks, attempts := 0, 0; attempts < p.cfg.Attempts && picks < len(attempted); picks++ {
		if picks > 0 {
			tried = p.followService(ex, attempted[:picks], tried)
		}
		i := p.pick(ex, tried)
		if i < 0 && picks == 0 && p.waitHeld(ex) {
			i = p.pick(ex, 0)
		}
		if i < 0 {
			break
		}
		tried = tried.Add(i)
		if picks > 0 {
			ex.svc.stats.retries[reason].Add(1)
		}
		ex.backend = ex.svc.backends[i]
		attempted[picks] = ex.backend
		err = p.attempt(ex)
		if err == nil {
			break
		}
		var ok bool
		if reason, ok = p.retriable(ex, err); !ok {
			break
		}
		if !(ex.backend.removed() && isDialError(err) && errors.Is(err, context.Canceled)) {
			attempts++
		}
	}
	if err != nil {
		p.fail(ex, err)
	}
}

// pick chooses the backend of the next attempt. A backend in slow start
// is passed over for another with the probability of its missing ramp.
func (p *Proxy) pick(ex *exchange, tried balancer.Tried) int {
	i := ex.svc.policy.Pick(ex.r, tried)
	if i < 0 {
		return i
	}
	if ramp := ex.svc.backends[i].ramp(ex.start); ramp < 1000 && rand.Int64N(1000) >= ramp {
		if j := ex.svc.policy.Pick(ex.r, tried.Add(i)); j >= 0 {
			return j
		}
	}
	return i
}

// followService moves a retry to the service of the current table when
// the table changed since the request started: a backend that failed may
// have been draining or removed since, and the backends that replace it
// are in the new table only. It returns the request's tried set in terms
// of the new service.
func (p *Proxy) followService(ex *exchange, attempted []*Backend, tried balancer.Tried) balancer.Tried {
	cur := p.table.Load().Service(ex.svc.name)
	if cur == nil || cur == ex.svc {
		return tried
	}
	ex.svc = cur
	tried = 0
	for i, b := range cur.backends {
		for _, a := range attempted {
			if a == b {
				tried = tried.Add(i)
			}
		}
	}
	return tried
}

// outbound makes the request to send to backends; attempts reuse it.
func (p *Proxy) outbound(ex *exchange) (*http.Request, error) {
	r := ex.r
	out := new(http.Request)
	*out = *r
	out.URL = &url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	out.Close = false
	out.Header = outboundHeader(r, ex.id)
	out.Trailer = r.Trailer
	out.Body = nil
	if r.Body != nil && r.Body != http.NoBody {
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		ex.body = body
		if body.replayable {
			out.ContentLength = int64(len(body.data))
			out.GetBody = body.fresh
		}
	}
	return out, nil
}

// attempt sends the request to ex.backend and, when a response arrives,
// relays it to the client. A nil error means the exchange is over.
func (p *Proxy) attempt(ex *exchange) error {
	b := ex.backend
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	b.requests.Add(1)
	sent := time.Now()
	res, err := p.roundTrip(ex, b)
	if err != nil {
		if ex.r.Context().Err() == nil && !(b.removed() && errors.Is(err, context.Canceled)) && !grpcDeadlinePassed(ex) {
			b.recordError(err)
			b.failed(err.Error(), err)
		}
		return err
	}
	b.observe(time.Since(sent))
	if res.StatusCode >= 500 {
		b.failed("status "+strconv.Itoa(res.StatusCode), nil)
	} else {
		b.succeeded()
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		p.switchProtocols(ex, res)
		return nil
	}
	p.relay(ex, res)
	return nil
}

// roundTrip sends the request to b: through its HTTP/1.1 fast path when
// both allow, else through its round tripper.
func (p *Proxy) roundTrip(ex *exchange, b *Backend) (*http.Response, error) {
	c := b.connections()
	if ex.fast && c.fast != nil {
		return c.fast.do(ex.r, &wireRequest{addr: b.addr, id: ex.id})
	}
	if ex.out == nil {
		out, err := p.outbound(ex)
		if err != nil {
			return nil, err
		}
		ex.out = out
	}
	ex.out.URL.Host = b.addr
	if ex.body != nil {
		ex.out.Body = ex.body.next()
	}
	return c.rt.RoundTrip(ex.out)
}

// retriable reports whether a failed attempt may be repeated on another
// backend, and why: always when the request never reached its backend;
// for idempotent requests whose body can be sent again when no response
// arrived, within the service's retry budget.
func (p *Proxy) retriable(ex *exchange, err error) (retryReason, bool) {
	if ex.r.Context().Err() != nil {
		return 0, false
	}
	if isDialError(err) {
		return retryConnect, true
	}
	if !idempotent(ex.r.Method) || ex.body != nil && !ex.body.replayable {
		return 0, false
	}
	reason := retryError
	if isTimeout(err) {
		reason = retryTimeout
	}
	return reason, ex.svc.stats.budget.allow(time.Now())
}

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// relay writes the backend's response to the client.
func (p *Proxy) relay(ex *exchange, res *http.Response) {
	defer res.Body.Close()
	h := ex.w.Header()
	copyResponseHeader(h, res.Header)
	if ex.svc.sticky != "" && !ex.hasStickyCookie() {
		h.Add("Set-Cookie", stickyCookie(ex.svc.sticky, ex.backend.Key()))
	}
	if ex.r.TLS != nil && ex.svc.hsts != nil {
		h["Strict-Transport-Security"] = ex.svc.hsts
	}
	announced := len(res.Trailer)
	for k := range res.Trailer {
		h.Add("Trailer", k)
	}
	ex.code = res.StatusCode
	ex.w.WriteHeader(res.StatusCode)
	flush := res.ContentLength == -1 || isEventStream(res.Header)
	if flush {
		// A stream's headers go out at once, not with its first event.
		if f, ok := ex.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	n, err := copyBody(ex.w, res.Body, flush)
	ex.bytes = n
	copyTrailer(h, res.Trailer, announced)
	if err != nil {
		if !errors.Is(err, errClientWrite) && ex.r.Context().Err() == nil {
			if grpcDeadlinePassed(ex) {
				grpcDeadlineExceeded(ex.w, true)
				p.done(ex)
				return
			}
			ex.backend.recordError(err)
			p.log.Warn().Err(err).Str("service", ex.svc.name).Str("backend", ex.backend.Name()).
				Str("request_id", ex.id).Msg("response from backend cut short")
		}
		p.done(ex)
		// The status line is out: abort the connection so the client sees
		// a broken response, not a complete one. That holds when the
		// client went away too: one that only half-closed still reads.
		panic(http.ErrAbortHandler)
	}
	p.done(ex)
}

// copyTrailer sets the backend's trailers on the client's header after the
// body. Trailers the backend did not announce before the body are sent with
// http.TrailerPrefix: the server drops unannounced keys set without it.
func copyTrailer(h, trailer http.Header, announced int) {
	if len(trailer) == announced {
		for k, v := range trailer {
			h[k] = v
		}
		return
	}
	for k, v := range trailer {
		h[http.TrailerPrefix+k] = v
	}
}

// hasStickyCookie reports whether the client's sticky cookie already names
// the backend that served it.
func (ex *exchange) hasStickyCookie() bool {
	v, ok := balancer.CookieValue(ex.r, ex.svc.sticky)
	return ok && v == ex.backend.Key()
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && ct[0][:17] == "text/event-stream"
}
