package proxy

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cutoverproxy/cutover/discovery"
)

// echoOnce writes msg and reads the echo.
func echoOnce(ctx context.Context, t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(got) != msg {
		t.Fatalf("echo of %q: %v %q %v", msg, typ, got, err)
	}
}

// readClose reads until the connection ends and returns its close error.
func readClose(ctx context.Context, c *websocket.Conn) error {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
}

func wantGoingAway(t *testing.T, who string, err error, reason string) {
	t.Helper()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != reason {
		t.Errorf("%s: connection ended with %v, want close frame 1001 %q", who, err, reason)
	}
}

func (h *harness) upgradedClosed(reason string) float64 {
	h.t.Helper()
	return h.metric("cutover_upgraded_closed_total", "service", "app", "reason", reason)
}

// A WebSocket whose backend drains keeps working for the grace period,
// then both ends get a close frame 1001.
func TestWebSocketDrainGrace(t *testing.T) {
	for _, how := range []string{"provider draining", "removed", "deploy drain"} {
		t.Run(how, func(t *testing.T) {
			addr, ended := echoBackend(t)
			const grace = 300 * time.Millisecond
			h := newHarness(t, Config{DrainGrace: grace})
			ep := addrEndpoint("c1:80", addr)
			h.p.Update(snapshot(service("app", ep)))
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c := h.dialWebSocket(ctx)
			defer c.CloseNow()
			echoOnce(ctx, t, c, "before")
			if n := h.metric("cutover_upgraded_active", "service", "app"); n != 1 {
				t.Errorf("upgraded_active = %v, want 1", n)
			}

			drained := time.Now()
			deployDrain := make(chan int, 1)
			switch how {
			case "provider draining":
				ep.State = discovery.Draining
				h.p.Update(snapshot(service("app", ep)))
			case "removed":
				h.p.Update(snapshot(service("app")))
			case "deploy drain":
				go func() { deployDrain <- h.p.Drain(ctx, "app", "c1") }()
			}
			echoOnce(ctx, t, c, "during the grace")
			err := readClose(ctx, c)
			if since := time.Since(drained); since < grace {
				t.Errorf("closed %s after the drain, before the grace of %s", since, grace)
			}
			wantGoingAway(t, "client", err, reasonDrained)
			wantGoingAway(t, "backend", recv(t, ended), reasonDrained)
			h.waitServed(1)
			if how == "deploy drain" {
				if left := recv(t, deployDrain); left != 0 {
					t.Errorf("Drain left %d in flight, want 0", left)
				}
			}
			if n := h.upgradedClosed("drained"); n != 1 {
				t.Errorf("upgraded_closed_total{reason=drained} = %v, want 1", n)
			}
			if n := h.metric("cutover_upgraded_active", "service", "app"); n != 0 {
				t.Errorf("upgraded_active = %v, want 0", n)
			}
		})
	}
}

// A backend that drains and comes back (a paused container, unpaused)
// before the grace ends keeps its WebSockets.
func TestWebSocketDrainUndone(t *testing.T) {
	addr, _ := echoBackend(t)
	const grace = time.Second
	h := newHarness(t, Config{DrainGrace: grace})
	ep := addrEndpoint("a", addr)
	h.p.Update(snapshot(service("app", ep)))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	draining := ep
	draining.State = discovery.Draining
	h.p.Update(snapshot(service("app", draining)))
	h.p.Update(snapshot(service("app", ep)))
	time.Sleep(grace + 300*time.Millisecond) // past the grace: nothing must happen
	echoOnce(ctx, t, c, "after the grace")
	if n := h.upgradedClosed("drained"); n != 0 {
		t.Errorf("upgraded_closed_total{reason=drained} = %v, want 0", n)
	}
}

// Shutdown closes the WebSockets left when its time is up with 1001.
func TestWebSocketShutdown(t *testing.T) {
	addr, ended := echoBackend(t)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	echoOnce(ctx, t, c, "hello")
	closed := make(chan error, 1)
	go func() { closed <- readClose(ctx, c) }()

	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	if err := h.p.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	wantGoingAway(t, "client", recv(t, closed), reasonShutdown)
	wantGoingAway(t, "backend", recv(t, ended), reasonShutdown)
	h.waitServed(1)
	if n := h.upgradedClosed("shutdown"); n != 1 {
		t.Errorf("upgraded_closed_total{reason=shutdown} = %v, want 1", n)
	}
}

// Who closes first names the reason.
func TestWebSocketCloseReasons(t *testing.T) {
	addr, ended := echoBackend(t)
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	c := h.dialWebSocket(ctx)
	echoOnce(ctx, t, c, "hello")
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	recv(t, ended)
	h.waitServed(1)

	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = c.Close(websocket.StatusNormalClosure, "backend leaves")
	}))
	h.p.Update(snapshot(service("app", endpoint("b", srv))))
	c = h.dialWebSocket(ctx)
	if err := readClose(ctx, c); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("closed by the backend: %v", err)
	}
	h.waitServed(1)
	for reason, want := range map[string]float64{"client": 1, "backend": 1, "drained": 0, "shutdown": 0} {
		if n := h.upgradedClosed(reason); n != want {
			t.Errorf("upgraded_closed_total{reason=%s} = %v, want %v", reason, n, want)
		}
	}
}

// rawUpgrade hijacks the request, answers 101 for protocol and hands the
// connection to serve.
func rawUpgrade(t *testing.T, protocol string, serve func(net.Conn, *bufio.ReadWriter)) string {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer conn.Close()
		h := "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + protocol + "\r\n"
		if protocol == "websocket" {
			h += "Sec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		}
		_, _ = brw.WriteString(h + "\r\n")
		_ = brw.Flush()
		serve(conn, brw)
	}))
	return srv.Listener.Addr().String()
}

// A backend that never answers the close frame does not hold the client:
// the proxy closes both connections after Config.CloseWait.
func TestWebSocketDrainSilentBackend(t *testing.T) {
	const closeWait = 3 * time.Second
	got := make(chan []byte, 1)
	open := make(chan time.Duration, 1) // from the first byte to the end
	addr := rawUpgrade(t, "websocket", func(conn net.Conn, brw *bufio.ReadWriter) {
		// Read whatever comes and never answer.
		first, err := brw.ReadByte()
		start := time.Now()
		rest, _ := io.ReadAll(brw)
		open <- time.Since(start)
		if err != nil {
			got <- nil
			return
		}
		got <- append([]byte{first}, rest...)
	})
	h := newHarness(t, Config{DrainGrace: 50 * time.Millisecond, CloseWait: closeWait})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	h.p.Update(snapshot(service("app")))
	wantGoingAway(t, "client", readClose(ctx, c), reasonDrained)
	h.waitServed(1)
	// The backend got the proxy's close frame and the connection then
	// ended, CloseWait later: not after DefaultCloseWait. A slow machine
	// can only make the wait look longer, unless the close frame itself
	// came more than closeWait-DefaultCloseWait late.
	wantOneCloseFrame(t, recv(t, got))
	if d := recv(t, open); d < closeWait-DefaultCloseWait {
		t.Errorf("backend's connection ended %v after the close frame, want about CloseWait (%v)", d, closeWait)
	}
}

// wantOneCloseFrame checks that b, all a backend got, is one close frame,
// masked as a client's frames are.
func wantOneCloseFrame(t *testing.T, b []byte) {
	t.Helper()
	if ends, ops := boundaries(b, len(b)); len(ends) != 1 || ends[0] != len(b) || ops[0] != opClose || b[1]&maskBit == 0 {
		t.Errorf("backend got % x, want one masked close frame", b)
	}
}

// A client that stopped reading does not keep the backend from its close
// frame: while the proxy's write to the client waits, the other
// direction still gets its close frame at once.
func TestWebSocketDrainClientNotReading(t *testing.T) {
	got := make(chan []byte, 1)
	addr := rawUpgrade(t, "websocket", func(conn net.Conn, brw *bufio.ReadWriter) {
		// Unmasked binary frames of 60,000 bytes until the writes fail:
		// the client reads none, so the proxy's write to it blocks.
		frame := append([]byte{0x82, 126, 60000 >> 8, 60000 & 0xff}, make([]byte, 60000)...)
		go func() {
			for {
				if _, err := conn.Write(frame); err != nil {
					return
				}
			}
		}()
		b, _ := io.ReadAll(brw)
		got <- b
	})
	h := newHarness(t, Config{DrainGrace: 200 * time.Millisecond, CloseWait: time.Second})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := h.dialWebSocket(ctx)
	defer c.CloseNow()
	h.p.Update(snapshot(service("app")))
	h.waitServed(1)
	// Neither peer answers the close: the backend's connection ends
	// after CloseWait, with the proxy's close frame before the end.
	wantOneCloseFrame(t, recv(t, got))
}

// Other upgraded protocols are closed after the grace, without frames.
func TestUpgradeDrainOtherProtocol(t *testing.T) {
	addr := rawUpgrade(t, "echo", func(conn net.Conn, brw *bufio.ReadWriter) {
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString(line)
			_ = brw.Flush()
		}
	})
	h := newHarness(t, Config{DrainGrace: 100 * time.Millisecond})
	h.p.Update(snapshot(service("app", addrEndpoint("a", addr))))
	conn, err := net.Dial("tcp", h.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	fmt.Fprintf(conn, "one\n")
	if line, err := br.ReadString('\n'); line != "one\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	h.p.Update(snapshot(service("app")))
	fmt.Fprintf(conn, "two\n")
	if line, err := br.ReadString('\n'); line != "two\n" {
		t.Fatalf("echo during the grace: %q %v", line, err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the grace: %q %v, want the connection closed", rest, err)
	}
	h.waitServed(1)
}

func TestDrainNotify(t *testing.T) {
	h := newHarness(t, Config{})
	h.p.Update(snapshot(service("app", addrEndpoint("a", refusedAddr(t)))))
	b := h.p.Backend("app", "a")
	isClosed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := b.drainNotify()
	b.setBits(outDown|outEjected, outDown|outEjected)
	if isClosed(ch) {
		t.Fatal("closed by a health state")
	}
	b.setBits(outDraining, outDraining)
	if !isClosed(ch) || !isClosed(b.drainNotify()) {
		t.Fatal("not closed on draining")
	}
	b.setBits(outDeployDrain, outDeployDrain)
	b.setBits(outDraining, 0)
	if !isClosed(b.drainNotify()) {
		t.Fatal("open while a deploy drains it")
	}
	b.setBits(outDeployDrain, 0)
	ch = b.drainNotify()
	if isClosed(ch) {
		t.Fatal("closed after the drain ended")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 1000 {
				b.setBits(outDraining, outDraining*uint32(i%2))
			}
		})
	}
	wg.Wait()
	b.setBits(outDraining, 0)
	if isClosed(b.drainNotify()) {
		t.Fatal("closed after concurrent changes ended out of drain")
	}
	h.p.Update(snapshot(service("app")))
	if !isClosed(b.drainNotify()) {
		t.Fatal("open after the backend was removed")
	}
}

// acceptKey computes Sec-WebSocket-Accept (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(strings.TrimSpace(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// A WebSocket that streams both ways when its grace runs out is closed at
// frame boundaries: every message that arrives is whole, and both ends
// then get the close frame, with and without compression.
func TestWebSocketDrainMidStream(t *testing.T) {
	for _, mode := range []websocket.CompressionMode{websocket.CompressionDisabled, websocket.CompressionContextTakeover} {
		t.Run(fmt.Sprint("compression ", mode), func(t *testing.T) {
			backendEnded := make(chan error, 1)
			srv := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
				if err != nil {
					return
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 20)
				go stream(r.Context(), c, 100<<10)
				backendEnded <- drainMessages(r.Context(), c)
			}))
			// Both ends stream large messages, and the close handshake
			// waits for the one in progress each way, and each peer's
			// close frame for its own: under -race on a loaded machine
			// that once took longer than the default CloseWait.
			h := newHarness(t, Config{DrainGrace: 200 * time.Millisecond, CloseWait: 5 * time.Second})
			h.p.Update(snapshot(service("app", endpoint("a", srv))))
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := strings.Replace(h.front.URL, "http://", "ws://", 1) + "/ws"
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Host: "app.test", CompressionMode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			go stream(ctx, c, 50<<10)
			h.p.Update(snapshot(service("app")))
			wantGoingAway(t, "client", drainMessages(ctx, c), reasonDrained)
			wantGoingAway(t, "backend", recv(t, backendEnded), reasonDrained)
			h.waitServed(1)
		})
	}
}

// stream writes messages of size bytes, each filled with its sequence
// number, until a write fails.
func stream(ctx context.Context, c *websocket.Conn, size int) {
	msg := make([]byte, size)
	for i := 0; ; i++ {
		for j := range msg {
			msg[j] = byte(i)
		}
		if c.Write(ctx, websocket.MessageBinary, msg) != nil {
			return
		}
	}
}

// drainMessages reads the messages that stream writes and checks that
// each is whole. It returns the error that ended the connection.
func drainMessages(ctx context.Context, c *websocket.Conn) error {
	for i := 0; ; i++ {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return err
		}
		for _, b := range msg {
			if b != byte(i) {
				return fmt.Errorf("message %d is not whole: byte %d", i, b)
			}
		}
	}
}
