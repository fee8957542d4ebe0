package proxy

import (
	"io"
	"net"
	"strconv"
	"testing"
)

// BenchmarkTCPConnection is one connection through a tcp.listen route:
// connect, greeting, 128 bytes there and back, close.
func BenchmarkTCPConnection(b *testing.B) {
	a := newEchoServer(b, "a")
	h := newHarness(b, Config{TCPHost: "127.0.0.1"})
	port := freePort(b)
	h.p.Update(snapshot(tcpService("echo", port, a.endpoint())))
	h.runTCP()
	h.waitListening("echo")
	msg := string(make([]byte, 128))
	b.ReportAllocs()
	for b.Loop() {
		tc := dialEcho(b, port)
		if err := tc.roundTrip(msg); err != nil {
			b.Fatal(err)
		}
		tc.c.Close()
	}
}

// BenchmarkTCPThroughput pushes 1 MiB per iteration through one
// connection to a backend that discards it (splice on Linux).
func BenchmarkTCPThroughput(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	b.Cleanup(func() {
		ln.Close()
		<-done
	})
	h := newHarness(b, Config{TCPHost: "127.0.0.1"})
	port := freePort(b)
	h.p.Update(snapshot(tcpService("sink", port, addrEndpoint("s", ln.Addr().String()))))
	h.runTCP()
	h.waitListening("sink")
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
