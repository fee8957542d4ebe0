package main

import (
	"context"
	"net"
	"testing"
	"time"
)

// The HTTP listener hands over a connection once its client has sent
// something, not when the handshake completes.
func TestHTTPListenerDefersAccept(t *testing.T) {
	lc := net.ListenConfig{Control: deferAccept}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
		t.Fatal("accepted before the client sent anything")
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-accepted:
		if s == nil {
			t.Fatal("accept failed")
		}
		s.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("not accepted after the client sent its request")
	}
}
