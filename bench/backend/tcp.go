package backend

import (
	"context"
	"io"
	"net"

	"github.com/cutoverproxy/cutover/internal/connserve"
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
	return connserve.Serve(ctx, ln, serveConn)
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
