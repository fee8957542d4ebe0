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
// response and copies bytes both ways until one side closes. The backend
// counts the connection as in flight until then.
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
	if !p.tunnels.add(conn) {
		ex.code = http.StatusServiceUnavailable
		p.done(ex)
		return
	}
	defer p.tunnels.done(conn)
	_ = conn.SetDeadline(time.Time{})
	h := http.Header{}
	copyResponseHeader(h, res.Header)
	h["Connection"] = valueUpgrade
	h["Upgrade"] = []string{got}
	if err := writeSwitch(brw, h); err != nil {
		ex.code = StatusClientClosed
		p.done(ex)
		return
	}
	ex.code = http.StatusSwitchingProtocols
	p.done(ex)
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(backConn, brw.Reader)
		// The client left or closed its side: end the backend connection
		// too, or the copy below waits for a backend that may never send.
		backConn.Close()
		errc <- err
	}()
	_, _ = io.Copy(conn, backConn)
	conn.Close()
	backConn.Close()
	<-errc
}

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
