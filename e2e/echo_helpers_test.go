package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The backends of the TCP tests (tcpEcho, passBackend) greet each
// connection with a line, then echo what they read; greetedConn is the
// client's side.

// connServer serves each connection accepted on ln with handle, on a
// goroutine of its own. stop closes ln (new connections are refused) and
// the open connections, as a process that exits does.
type connServer struct {
	ln       net.Listener
	handle   func(net.Conn)
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	once     sync.Once
}

// serveConns starts serving ln with handle, until stop or the end of the
// test.
func serveConns(t *testing.T, ln net.Listener, handle func(net.Conn)) *connServer {
	t.Helper()
	s := &connServer{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Go(s.serve)
	t.Cleanup(s.stop)
	return s
}

func (s *connServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c)
		})
	}
}

func (s *connServer) stop() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
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
