package backend

import (
	"context"
	"io"
	"net"
	"sync"
)

// The first byte a TCP client sends selects what the connection does.
const (
	// ModeEcho writes back every byte read after the mode byte.
	ModeEcho byte = 'e'
	// ModeGenerate writes bytes as fast as the client reads them, until the
	// client closes: the download half of the bulk workload.
	ModeGenerate byte = 'g'
	// ModeSink reads and discards until the client closes: the upload half.
	ModeSink byte = 's'
)

// chunk is the write size of ModeGenerate and the read size of the others.
const chunk = 64 << 10

// ServeTCP accepts connections on ln until ctx ends and serves each by its
// mode byte. It closes every open connection before it returns.
func ServeTCP(ctx context.Context, ln net.Listener) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			serveConn(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
}

func serveConn(c net.Conn) {
	defer func() { _ = c.Close() }()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case ModeEcho:
		echo(c)
	case ModeGenerate:
		for {
			if _, err := c.Write(body[:chunk]); err != nil {
				return
			}
		}
	case ModeSink:
		_, _ = io.Copy(io.Discard, c)
	}
}

// echo copies with its own buffer rather than io.Copy, which could splice a
// socket onto itself: each read is answered by one write, like a
// request/response protocol.
func echo(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
