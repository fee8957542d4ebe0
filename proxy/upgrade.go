package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// switchProtocols completes an upgrade (WebSocket and others) that the
// backend accepted: it takes over the client connection, sends the 101
// response and copies bytes both ways until one side closes, the backend
// has drained for Config.DrainGrace or the proxy shuts down (see tunnel).
// The backend counts the connection as in flight until then.
func (p *Proxy) switchProtocols(ex *exchange, res *http.Response) {
	want, got := upgradeType(ex.r.Header), upgradeType(res.Header)
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if want == "" || !strings.EqualFold(want, got) || !ok {
		res.Body.Close()
		p.fail(ex, fmt.Errorf("backend switched to protocol %q, client asked for %q", got, want))
		return
	}
	defer backConn.Close()
	conn, brw, err := http.NewResponseController(ex.w).Hijack()
	if err != nil {
		p.fail(ex, fmt.Errorf("take over client connection for upgrade: %w", err))
		return
	}
	defer conn.Close()
	expired, ok := p.tunnels.add()
	if !ok {
		ex.code = http.StatusServiceUnavailable
		p.done(ex)
		return
	}
	defer p.tunnels.done()
	h := http.Header{}
	copyResponseHeader(h, res.Header)
	h["Connection"] = valueUpgrade
	h["Upgrade"] = []string{got}
	// The deadline keeps a client that does not read from holding
	// Shutdown, which only the tunnel's run loop answers.
	_ = conn.SetDeadline(time.Now().Add(switchWriteTimeout))
	if err := writeSwitch(brw, h); err != nil {
		ex.code = StatusClientClosed
		p.done(ex)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	ex.code = http.StatusSwitchingProtocols
	p.done(ex)
	st := ex.svc.stats
	st.upgradedActive.Add(1)
	tn := newTunnel(ex.backend, conn, brw.Reader, backConn, strings.EqualFold(got, "websocket"))
	reason := tn.run(p.cfg.DrainGrace, p.cfg.CloseWait, expired)
	st.upgradedActive.Add(-1)
	st.upgradedClosed[reason].Add(1)
	if reason == closedDrained || reason == closedShutdown {
		p.log.Debug().Str("service", ex.svc.name).Str("backend", ex.backend.Name()).Str("request_id", ex.id).
			Str("reason", closeReasons[reason]).Msg("closed upgraded connection")
	}
}

// switchWriteTimeout bounds sending the 101 response to the client.
const switchWriteTimeout = 5 * time.Second

func writeSwitch(brw *bufio.ReadWriter, h http.Header) error {
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return err
	}
	if err := h.Write(brw); err != nil {
		return err
	}
	if _, err := brw.WriteString("\r\n"); err != nil {
		return err
	}
	return brw.Flush()
}
