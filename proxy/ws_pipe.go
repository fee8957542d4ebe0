package proxy

import (
	"io"
	"sync"
	"sync/atomic"
)

// pipe copies one direction of an upgraded connection. For a WebSocket it
// follows the frames (see frames) so that stop can end the direction
// cleanly: after the frame in progress it sends a close frame in place of
// what follows, then reads and drops the source's frames until the
// source's own close frame.
//
// run is the only reader of src. Writes to dst come from run and from stop,
// under mu; for other protocols run is the only writer and mu is not used.
type pipe struct {
	src io.Reader
	dst io.Writer
	ws  bool
	// side ended the tunnel when src sends a close frame first; its peer
	// (dst's side) when a write to dst fails first (a client that stopped
	// reading, cut off by the send timeout).
	side closeReason
	by   *atomic.Uint32 // the tunnel's record of who ended it first

	mu        sync.Mutex
	f         frames
	stopping  bool   // send inject at the next frame boundary
	inject    []byte // the close frame to send
	discard   bool   // the close went to dst: drop the rest of src
	sentClose bool   // dst got a close frame, src's or the proxy's
	srcClosed bool   // src sent its close frame, or run ended

	closed chan struct{} // closed with srcClosed
	ended  chan struct{} // closed when run returns
}

func newPipe(src io.Reader, dst io.Writer, ws bool, side closeReason, by *atomic.Uint32) *pipe {
	return &pipe{src: src, dst: dst, ws: ws, side: side, by: by, closed: make(chan struct{}), ended: make(chan struct{})}
}

// run copies src to dst until either fails.
func (pp *pipe) run() {
	defer close(pp.ended)
	defer pp.markClosed()
	bp := pipeBuffers.Get().(*[]byte)
	defer pipeBuffers.Put(bp)
	buf := *bp
	for {
		n, err := pp.src.Read(buf)
		if n > 0 {
			if werr := pp.forward(buf[:n]); werr != nil {
				setReason(pp.by, pp.side.peer())
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward writes what dst must get of b, the next bytes of src.
func (pp *pipe) forward(b []byte) error {
	if !pp.ws {
		_, err := pp.dst.Write(b)
		return err
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	start := 0 // b[start:i] is still to be written
	for i := 0; i < len(b); {
		n, end := pp.f.next(b[i:])
		i += n
		if !end {
			continue
		}
		closing := pp.f.opcode == opClose
		if pp.discard {
			if closing {
				pp.markClosedLocked()
			}
			continue
		}
		if closing {
			pp.sentClose = true
			setReason(pp.by, pp.side)
			pp.markClosedLocked()
		}
		if pp.stopping {
			if err := pp.write(b[start:i]); err != nil {
				return err
			}
			start = i
			if err := pp.injectLocked(); err != nil {
				return err
			}
		}
	}
	if pp.discard {
		return nil
	}
	return pp.write(b[start:])
}

func (pp *pipe) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := pp.dst.Write(b)
	return err
}

// stop makes the pipe send frame (a close frame) to dst after the frame in
// progress, or at once when src is between frames, and drop the rest of
// src. A dst that got a close frame already gets no other.
func (pp *pipe) stop(frame []byte) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.stopping {
		return
	}
	pp.stopping, pp.inject = true, frame
	if pp.f.atBoundary() {
		_ = pp.injectLocked() // a failed write ends the connection anyway
	}
}

func (pp *pipe) injectLocked() error {
	pp.discard = true
	if pp.sentClose {
		return nil
	}
	pp.sentClose = true
	return pp.write(pp.inject)
}

func (pp *pipe) markClosed() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.markClosedLocked()
}

func (pp *pipe) markClosedLocked() {
	if !pp.srcClosed {
		pp.srcClosed = true
		close(pp.closed)
	}
}
