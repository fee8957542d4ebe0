package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// The TCP echo greets with the name, echoes, and on the context's end
// closes its listener and the open connections and returns nil.
func TestTCPEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveTCPEcho(ctx, ln, "a") }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "a\n" {
		t.Fatalf("greeting %q, %v; want a and a newline", line, err)
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo %q, %v; want ping", got, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveTCPEcho returned %v at the context's end, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serveTCPEcho did not return within 10 s of the context's end")
	}
	if n, err := r.Read(got); err == nil {
		t.Fatalf("read %d bytes after the end, want the connection closed", n)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the listener still accepts after the end")
	}
}
