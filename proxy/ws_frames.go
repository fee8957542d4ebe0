package proxy

import (
	"crypto/rand"
	"encoding/binary"
)

// The proxy follows the frames of a WebSocket (RFC 6455 section 5.2) in
// each direction so that it can end the connection cleanly: stop after the
// frame in progress and put a close frame in. It reads frame headers only;
// payloads are copied through without being buffered or unmasked.

const (
	opClose        = 0x8
	maxFrameHeader = 14 // 2 + 8 bytes of extended length + 4 of mask key
	finBit         = 0x80
	maskBit        = 0x80

	// closeGoingAway is the close code the proxy sends to both ends of a
	// WebSocket whose backend drained, or when it shuts down.
	closeGoingAway = 1001
	// maxCloseReason is the longest reason that fits a control frame
	// (125 bytes of payload) after the 2-byte code.
	maxCloseReason = 123
)

// frames tracks frame boundaries in one direction of a WebSocket. Feed it
// every byte in order with next. The zero value is at a boundary. It does
// not allocate.
type frames struct {
	hdr       [maxFrameHeader]byte
	have      int    // header bytes collected of the frame in progress
	left      uint64 // payload bytes still to come when inPayload
	inPayload bool
	opcode    byte // of the frame whose header came last
}

// atBoundary reports whether the bytes so far end with a whole frame.
func (f *frames) atBoundary() bool { return f.have == 0 && !f.inPayload }

// next consumes the start of b up to the end of the frame in progress, at
// most all of b. It returns how many bytes it consumed and whether a frame
// ended there; the frame's opcode is then f.opcode. b must not be empty.
func (f *frames) next(b []byte) (n int, end bool) {
	if f.inPayload {
		if uint64(len(b)) < f.left {
			f.left -= uint64(len(b))
			return len(b), false
		}
		n, f.left, f.inPayload = int(f.left), 0, false
		return n, true
	}
	for n < len(b) && !f.headerDone() {
		f.hdr[f.have] = b[n]
		f.have++
		n++
	}
	if !f.headerDone() {
		return n, false
	}
	f.opcode = f.hdr[0] & 0x0f
	f.left = payloadLen(f.hdr[:f.have])
	f.have = 0
	f.inPayload = f.left > 0
	return n, !f.inPayload
}

func (f *frames) headerDone() bool {
	return f.have >= 2 && f.have == headerLen(f.hdr[1])
}

// headerLen is the length of a frame header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// payloadLen reads the payload length of a whole frame header.
func payloadLen(h []byte) uint64 {
	switch n := h[1] & 0x7f; n {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(n)
	}
}

// closeFrame returns a close frame with code and reason (cut to fit).
// Frames to a server (masked true) are masked with a fresh random key, as
// RFC 6455 requires of every frame a client sends.
func closeFrame(code uint16, reason string, masked bool) []byte {
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	n := 2 + len(reason)
	f := make([]byte, 2, 2+4+n)
	f[0], f[1] = finBit|opClose, byte(n)
	var key [4]byte
	if masked {
		f[1] |= maskBit
		_, _ = rand.Read(key[:]) // never fails (crypto/rand)
		f = append(f, key[:]...)
	}
	payload := len(f)
	f = binary.BigEndian.AppendUint16(f, code)
	f = append(f, reason...)
	if masked {
		for i := payload; i < len(f); i++ {
			f[i] ^= key[(i-payload)%4]
		}
	}
	return f
}
