package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketEchoThroughProxy(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(2 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer echo.Close()
	in := start(t, fmt.Sprintf(`
services:
  ws:
    host: ws.test
    backends: [%s]
`, echo.Listener.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, strings.Replace(in.http, "http://", "ws://", 1)+"/ws", &websocket.DialOptions{Host: "ws.test"})
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer c.CloseNow()
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	for i := range 50 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(got) != msg {
			t.Fatalf("echo %d: got %v %q %v", i, typ, got, err)
		}
	}
	big := strings.Repeat("x", 1<<20)
	if err := c.Write(ctx, websocket.MessageBinary, []byte(big)); err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(2 << 20)
	if _, got, err := c.Read(ctx); err != nil || string(got) != big {
		t.Fatalf("1 MiB binary echo: %d bytes, %v", len(got), err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := metricValue(t, in, "cutover_requests_total", map[string]string{"service": "ws", "code": "101", "method": "GET"}); got != 1 {
		t.Errorf("cutover_requests_total{code=101} = %v, want 1", got)
	}
}
