package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/internal/connserve"
)

// The backends of the TCP tests (tcpEcho, passBackend) greet each
// connection with a line, then echo what they read; greetedConn is the
// client's side.

// connServer serves each connection accepted on ln with handle, on a
// goroutine of its own. stop closes ln (new connections are refused) and
// the open connections, as a process that exits does.
type connServer struct {
	ln       net.Listener
	accepted atomic.Int64
	stop     func()
}

// serveConns starts serving ln with handle, until stop or the end of the
// test.
func serveConns(t *testing.T, ln net.Listener, handle func(net.Conn)) *connServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := &connServer{ln: ln}
	go func() {
		done <- connserve.Serve(ctx, ln, func(c net.Conn) {
			s.accepted.Add(1)
			handle(c)
		})
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(s.stop)
	return s
}

// greetedConn is a client connection, through cutover, to a backend that
// greets with a line and then echoes.
type greetedConn struct {
	c        net.Conn
	r        *bufio.Reader
	greeting string // the greeting line, without its newline
}

// readGreeting reads the greeting on c, with a deadline of 10s that it
// leaves on c. It closes c when no greeting comes.
func readGreeting(c net.Conn) (*greetedConn, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	gc := &greetedConn{c: c, r: bufio.NewReader(c)}
	line, err := gc.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	gc.greeting = strings.TrimSuffix(line, "\n")
	return gc, nil
}

// roundTrip sends msg and reads it back.
func (gc *greetedConn) roundTrip(msg []byte) error {
	if _, err := gc.c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(gc.r, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs")
	}
	return nil
}
