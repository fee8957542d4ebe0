package main

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(&app{name: "a", version: "v1", now: time.Now})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+srv.URL[len("http"):]+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if got := resp.Header.Get("X-Backend"); got != "a" {
		t.Errorf("upgrade X-Backend = %q, want a", got)
	}
	messages := []struct {
		typ  websocket.MessageType
		data string
	}{
		{websocket.MessageText, "hello"},
		{websocket.MessageBinary, "\x00\x01\xff"},
		{websocket.MessageText, ""},
	}
	for _, m := range messages {
		if err := c.Write(ctx, m.typ, []byte(m.data)); err != nil {
			t.Fatalf("write: %v", err)
		}
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != m.typ || string(data) != m.data {
			t.Errorf("echo = %v %q, want %v %q", typ, data, m.typ, m.data)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}
