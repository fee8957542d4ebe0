package connserve

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Each connection is served on its own goroutine; the context's end
// closes the listener and the open connections, whose serve returns, and
// Serve returns nil after them.
func TestServeClosesWhatItAccepted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{}, 2)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, func(c net.Conn) {
			served <- struct{}{}
			_, _ = io.Copy(io.Discard, c) // until the connection closes
		})
	}()
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	for range 2 {
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("two connections were not both served within 10 s")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v at the context's end, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of the context's end")
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("client %d read %v after the end, want EOF: its connection closed", i, err)
		}
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after the end")
	}
}

// A listener that fails is reported, with its address.
func TestServeReportsAFailedAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), ln, func(net.Conn) {})
	if err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a closed listener = %v, want an error wrapping net.ErrClosed", err)
	}
}
