package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// echoBackend is a WebSocket echo server; ended receives the error that
// ended each connection.
func echoBackend(t *testing.T) (string, <-chan error) {
	ended := make(chan error, 4)
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			ended <- err
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(2 << 20)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				ended <- err
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				ended <- err
				return
			}
		}
	}))
	return srv.Listener.Addr().String(), ended
}

func (h *harness) dialWebSocket(ctx context.Context) *websocket.Conn {
	h.t.Helper()
	url := strings.Replace(h.front.URL, "http://", "ws://", 1) + "/ws"
	c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{Host: "app.test"})
	if err != nil {
		h.t.Fatalf("dial through the proxy: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		h.t.Fatalf("status %d, want 101", res.StatusCode)
	}
	return c
}

func TestWebSocketEcho(t *testing.T) {
	addr, ended := echoBackend(t)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	for i := range 20 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(got) != msg {
			t.Fatalf("echo %d: %v %q %v", i, typ, got, err)
		}
	}
	big := strings.Repeat("x", 1<<20)
	c.SetReadLimit(2 << 20)
	if err := c.Write(ctx, websocket.MessageBinary, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != big {
		t.Fatalf("1 MiB echo: %d bytes, %v", len(got), err)
	}
	if b := h.p.Backend("app", "a"); b.InFlight() != 1 {
		t.Errorf("in flight during the connection = %d, want 1", b.InFlight())
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := recv(t, ended); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("backend connection ended with %v, want a normal closure", err)
	}
	h.waitServed(1)
	if b := h.p.Backend("app", "a"); b.InFlight() != 0 {
		t.Errorf("in flight after the connection = %d, want 0", b.InFlight())
	}
	if n := h.metric("cutover_requests_total", "service", "app", "code", "101", "method", "GET"); n != 1 {
		t.Errorf("requests_total{code=101} = %v, want 1", n)
	}
}

// A client that disappears without a close handshake must not leave the
// backend connection open.
func TestWebSocketClientVanishes(t *testing.T) {
	addr, ended := echoBackend(t)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	c := h.dialWebSocket(ctx)
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if err := recv(t, ended); err == nil {
		t.Error("backend connection ended without error")
	}
	h.waitServed(1)
	if b := h.p.Backend("app", "a"); b.InFlight() != 0 {
		t.Errorf("in flight after the client left = %d, want 0", b.InFlight())
	}
}

// A backend that vanishes must not leave the client connection open.
func TestWebSocketBackendVanishes(t *testing.T) {
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.CloseNow()
	}))
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("read from a connection the backend dropped: %v (context %v)", err, ctx.Err())
	}
	h.waitServed(1)
}

func TestUpgradeRefusedByBackend(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", endpoint("a", namedBackend(t, "plain")))))

	req := h.request("GET", "app.test", "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	res, body := h.do(req)
	if res.StatusCode != http.StatusOK || body != "plain" {
		t.Errorf("got %d %q, want the backend's 200", res.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := strings.Replace(h.front.URL, "http://", "ws://", 1) + "/ws"
	_, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{Host: "app.test"})
	if err == nil || res == nil || res.StatusCode != http.StatusOK {
		t.Errorf("websocket dial: %v, response %v; want the backend's 200", err, res)
	}
}

func TestUnaskedSwitchingProtocols(t *testing.T) {
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
		_ = brw.Flush()
	}))
	h := newHarness(t, Config{Attempts: 1})
	h.p.Update(snapshot(service("app", endpoint("a", srv))))
	if res, body := h.get("/"); res.StatusCode != http.StatusBadGateway {
		t.Errorf("got %d %q, want 502", res.StatusCode, body)
	}
}
