package main

import (
	"context"
	"io"
	"net/http"

	"github.com/coder/websocket"
)

// MaxWebSocketMessage bounds one echoed WebSocket message, in bytes.
const MaxWebSocketMessage = 64 << 20

// serveWebSocket echoes every message back with its type (text or binary)
// until the client closes. The upgrade response carries X-Backend and
// X-Version so that a test can tell which backend it reached.
func (a *app) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	a.setIdentity(w.Header())
	setSeen(w.Header(), r)
	// The origin check is off: browsers are not the clients here, and behind
	// the proxy the Origin need not match the Host the backend sees.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has written the error response
	}
	defer c.CloseNow()
	c.SetReadLimit(MaxWebSocketMessage)
	echoMessages(r.Context(), c)
}

// echoMessages copies each message back, streaming it rather than holding
// it whole, until reading or writing fails. A close frame from the client
// ends the loop too; the library answers it.
func echoMessages(ctx context.Context, c *websocket.Conn) {
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return
		}
		_, err = io.Copy(w, r)
		if cerr := w.Close(); err != nil || cerr != nil {
			return
		}
	}
}
