package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A WebSocket whose backend leaves the configuration stays open for the
// drain grace (--drain-timeout) and keeps echoing, then both ends get a
// close frame 1001 (going away) and the close is counted.
func TestWebSocketDrainClosesAfterGrace(t *testing.T) {
	backendEnded := make(chan error, 1)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				backendEnded <- err
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				backendEnded <- err
				return
			}
		}
	}))
	defer echo.Close()
	const grace = 2 * time.Second
	in := start(t, fmt.Sprintf(`
services:
  ws:
    host: ws.test
    backends: [%s]
`, echo.Listener.Addr()), "--drain-timeout", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(in.http, "http://", "ws://", 1)+"/ws", &websocket.DialOptions{Host: "ws.test"})
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer c.CloseNow()
	echoMessage(ctx, t, c, "before the drain")

	in.writeConfig(`
services:
  ws:
    host: ws.test
    backends: []
`)
	// The backend is out once new connections get 503.
	eventually(t, 5*time.Second, func() error {
		if code, _, err := in.get(http.DefaultClient, "ws.test", "/"); err != nil || code != http.StatusServiceUnavailable {
			return fmt.Errorf("GET after the backend left: %d %v", code, err)
		}
		return nil
	})
	drained := time.Now()
	for i := 0; time.Since(drained) < grace/2; i++ {
		echoMessage(ctx, t, c, fmt.Sprintf("during the grace %d", i))
		time.Sleep(100 * time.Millisecond)
	}
	var err2 error
	for err2 == nil {
		_, _, err2 = c.Read(ctx)
	}
	if since := time.Since(drained); since < grace/2 {
		t.Errorf("closed %s after the drain, well before the grace of %s", since, grace)
	}
	wantGoingAwayE2E(t, "client", err2)
	select {
	case err := <-backendEnded:
		wantGoingAwayE2E(t, "backend", err)
	case <-time.After(10 * time.Second):
		t.Error("the backend's connection did not end")
	}
	labels := map[string]string{"service": "ws", "reason": "drained"}
	eventually(t, 5*time.Second, func() error {
		if n := metricValue(t, in, "cutover_upgraded_closed_total", labels); n != 1 {
			return fmt.Errorf("cutover_upgraded_closed_total%v = %v, want 1", labels, n)
		}
		return nil
	})
	if n := metricValue(t, in, "cutover_upgraded_active", map[string]string{"service": "ws"}); n != 0 {
		t.Errorf("cutover_upgraded_active = %v, want 0", n)
	}
}

func echoMessage(ctx context.Context, t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(got) != msg {
		t.Fatalf("echo of %q: %v %q %v", msg, typ, got, err)
	}
}

func wantGoingAwayE2E(t *testing.T, who string, err error) {
	t.Helper()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("%s: the WebSocket ended with %v, want a close frame 1001 (going away)", who, err)
	}
}
