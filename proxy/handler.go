package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cutoverproxy/cutover/balancer"
)

// ServeHTTP routes the request and forwards it to a backend of the matched
// service, trying other backends when an attempt fails in a way that is
// safe to retry.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchange{start: time.Now(), w: w, r: r}
	ex.svc = p.table.Load().Lookup(r.Host, r.URL.Path)
	if ex.svc == nil {
		p.fail(&ex, errNoRoute)
		return
	}
	p.forward(&ex)
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
	code    int
	bytes   int64
}

func (p *Proxy) forward(ex *exchange) {
	ex.id = p.ids.of(ex.r)
	ex.out = p.outbound(ex)
	var tried balancer.Tried
	var attempted [2 * maxAttempts]*Backend
	err := errNoBackend
	// A dial cut short because its backend left the configuration cost the
	// backend nothing and the client no time: it does not count as an
	// attempt. picks bounds the loop all the same.
	for picks, attempts := 0, 0; attempts < p.cfg.Attempts && picks < len(attempted); picks++ {
		if picks > 0 && ex.backend.removed() {
			tried = p.followService(ex, attempted[:picks], tried)
		}
		i := ex.svc.policy.Pick(ex.r, tried)
		if i < 0 {
			break
		}
		tried = tried.Add(i)
		if picks > 0 {
			ex.svc.stats.retries.Add(1)
		}
		ex.backend = ex.svc.backends[i]
		attempted[picks] = ex.backend
		if err = p.attempt(ex); err == nil || !p.retriable(ex, err) {
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

// followService moves a retry to the service of the current table when the
// backend that just failed was removed since the request started: the
// backends that replace it are in the new table only. It returns the
// request's tried set in terms of the new service.
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
func (p *Proxy) outbound(ex *exchange) *http.Request {
	r := ex.r
	out := new(http.Request)
	*out = *r
	out.URL = &url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	out.Close = false
	out.Header = outboundHeader(r, ex.id)
	out.Trailer = r.Trailer
	if r.Body == nil || r.Body == http.NoBody {
		out.Body = nil
	} else {
		ex.body = &requestBody{rc: r.Body}
		out.Body = ex.body
	}
	return out
}

// attempt sends the request to ex.backend and, when a response arrives,
// relays it to the client. A nil error means the exchange is over.
func (p *Proxy) attempt(ex *exchange) error {
	b := ex.backend
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	b.requests.Add(1)
	ex.out.URL.Host = b.addr
	sent := time.Now()
	res, err := b.rt.RoundTrip(ex.out)
	if err != nil {
		if ex.r.Context().Err() == nil {
			b.recordError(err)
		}
		return err
	}
	b.observe(time.Since(sent))
	if res.StatusCode == http.StatusSwitchingProtocols {
		p.switchProtocols(ex, res)
		return nil
	}
	p.relay(ex, res)
	return nil
}

// retriable reports whether a failed attempt may be repeated on another
// backend: always when the request never left the proxy, and for
// idempotent requests without a body when no response arrived.
func (p *Proxy) retriable(ex *exchange, err error) bool {
	if ex.r.Context().Err() != nil {
		return false
	}
	if isDialError(err) {
		return true
	}
	return ex.body == nil && idempotent(ex.r.Method)
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
		h.Add("Set-Cookie", stickyCookie(ex.svc.sticky, ex.backend.key))
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
	if err != nil && !errors.Is(err, errClientWrite) && ex.r.Context().Err() == nil {
		ex.backend.recordError(err)
		p.log.Warn().Err(err).Str("service", ex.svc.name).Str("backend", ex.backend.Name()).
			Str("request_id", ex.id).Msg("response from backend cut short")
		p.done(ex)
		// The status line is out: abort the connection so the client sees
		// a broken response, not a complete one.
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
	return ok && v == ex.backend.key
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && ct[0][:17] == "text/event-stream"
}

// requestBody is the client's request body as sent to backends. Close is a
// no-op so that a transport that closes it after a failed dial leaves it
// readable for the next attempt; the server closes the real body.
type requestBody struct {
	rc io.ReadCloser
}

func (b *requestBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b *requestBody) Close() error               { return nil }
