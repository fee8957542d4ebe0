package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
)

// testFrame builds a frame with a payload of n bytes, masked or not.
func testFrame(fin bool, opcode byte, n int, masked bool) []byte {
	f := []byte{opcode, 0}
	if fin {
		f[0] |= finBit
	}
	switch {
	case n < 126:
		f[1] = byte(n)
	case n <= 0xffff:
		f[1] = 126
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f[1] = 127
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if masked {
		f[1] |= maskBit
		f = append(f, 1, 2, 3, 4)
	}
	for i := range n {
		f = append(f, byte(i))
	}
	return f
}

type frameCase struct {
	name   string
	frame  []byte
	opcode byte
}

func frameCases() []frameCase {
	var cs []frameCase
	for _, masked := range []bool{false, true} {
		for _, n := range []int{0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, 70000} {
			cs = append(cs, frameCase{name: "binary", frame: testFrame(true, 0x2, n, masked), opcode: 0x2})
		}
		cs = append(cs,
			frameCase{name: "text start", frame: testFrame(false, 0x1, 10, masked), opcode: 0x1},
			frameCase{name: "ping between fragments", frame: testFrame(true, 0x9, 4, masked), opcode: 0x9},
			frameCase{name: "continuation", frame: testFrame(true, 0x0, 300, masked), opcode: 0x0},
			frameCase{name: "close", frame: testFrame(true, opClose, 2, masked), opcode: opClose},
		)
	}
	return cs
}

// boundaries feeds stream to a frames in chunks of the given sizes (the
// last one repeated) and returns the offsets where frames ended, with
// their opcodes.
func boundaries(stream []byte, chunks ...int) (ends []int, ops []byte) {
	var f frames
	off, c := 0, 0
	for off < len(stream) {
		size := chunks[min(c, len(chunks)-1)]
		c++
		chunk := stream[off:min(off+size, len(stream))]
		for i := 0; i < len(chunk); {
			n, end := f.next(chunk[i:])
			i += n
			if end {
				ends = append(ends, off+i)
				ops = append(ops, f.opcode)
			}
		}
		off += len(chunk)
	}
	return ends, ops
}

func TestFramesBoundaries(t *testing.T) {
	cases := frameCases()
	var stream []byte
	var wantEnds []int
	var wantOps []byte
	for _, c := range cases {
		stream = append(stream, c.frame...)
		wantEnds = append(wantEnds, len(stream))
		wantOps = append(wantOps, c.opcode)
	}
	for _, chunks := range [][]int{{len(stream)}, {1}, {2}, {3}, {7}, {13}, {14}, {4096}, {32 << 10}, {1, 5, 100, 3, 70001, 9}} {
		ends, ops := boundaries(stream, chunks...)
		if !equalInts(ends, wantEnds) || !bytes.Equal(ops, wantOps) {
			t.Errorf("chunks %v: ends %v ops %v, want %v %v", chunks, ends, ops, wantEnds, wantOps)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var chunks []int
		for range 40 {
			chunks = append(chunks, 1+r.IntN(3000))
		}
		if ends, _ := boundaries(stream, chunks...); !equalInts(ends, wantEnds) {
			t.Fatalf("chunks %v: ends %v, want %v", chunks, ends, wantEnds)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzFrames checks that how a stream is cut into reads never changes the
// frame boundaries found in it, whatever the bytes.
func FuzzFrames(f *testing.F) {
	for _, c := range frameCases()[:6] {
		f.Add(c.frame, uint8(3))
	}
	f.Add([]byte{0x81, 0xfe, 0x00, 0x05, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o', 0x88, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		if len(stream) == 0 {
			return
		}
		whole, wops := boundaries(stream, len(stream))
		cut, cops := boundaries(stream, int(chunk)+1)
		if !equalInts(whole, cut) || !bytes.Equal(wops, cops) {
			t.Fatalf("in one read: %v %v; in reads of %d: %v %v", whole, wops, int(chunk)+1, cut, cops)
		}
	})
}

func TestCloseFrame(t *testing.T) {
	for _, masked := range []bool{false, true} {
		f := closeFrame(closeGoingAway, reasonDrained, masked)
		ends, ops := boundaries(f, len(f))
		if len(ends) != 1 || ends[0] != len(f) || ops[0] != opClose || f[0]&finBit == 0 {
			t.Fatalf("masked %v: % x is not one final close frame", masked, f)
		}
		if got := f[1]&maskBit != 0; got != masked {
			t.Errorf("mask bit %v, want %v", got, masked)
		}
		payload := f[2:]
		if masked {
			key := payload[:4]
			payload = bytes.Clone(payload[4:])
			for i := range payload {
				payload[i] ^= key[i%4]
			}
		}
		if code := binary.BigEndian.Uint16(payload); code != closeGoingAway || string(payload[2:]) != reasonDrained {
			t.Errorf("masked %v: code %d reason %q", masked, code, payload[2:])
		}
	}
	long := closeFrame(closeGoingAway, string(bytes.Repeat([]byte("x"), 200)), true)
	if n := long[1] & 0x7f; n != 125 {
		t.Errorf("payload of a close frame with a long reason: %d bytes, want 125", n)
	}
}

// testPipe is a WebSocket pipe from the test to dst.
func testPipe(dst io.Writer) *pipe {
	var by atomic.Uint32
	return newPipe(nil, dst, true, closedClient, &by)
}

// A stop in the middle of a frame lets the frame finish, then sends the
// close frame and nothing more of the source.
func TestPipeStopsAtFrameBoundary(t *testing.T) {
	var dst bytes.Buffer
	pp := testPipe(&dst)
	first := testFrame(true, 0x2, 1000, true)
	second := testFrame(true, 0x1, 5, true)
	closing := closeFrame(closeGoingAway, "bye", true)
	if err := pp.forward(first[:300]); err != nil {
		t.Fatal(err)
	}
	pp.stop(closing)
	if dst.Len() != 300 {
		t.Fatalf("stop in mid-frame wrote %d bytes, want none until the frame ends", dst.Len()-300)
	}
	rest := append(append([]byte{}, first[300:]...), second...)
	if err := pp.forward(rest); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, first...), closing...)
	if !bytes.Equal(dst.Bytes(), want) {
		t.Fatalf("dst got %d bytes, want the first frame and the close frame (%d)", dst.Len(), len(want))
	}
	select {
	case <-pp.closed:
		t.Fatal("closed before the source sent its close frame")
	default:
	}
	if err := pp.forward(testFrame(true, opClose, 2, true)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pp.closed:
	default:
		t.Fatal("the source's close frame was not noticed")
	}
	if !bytes.Equal(dst.Bytes(), want) {
		t.Error("the source's frames after the stop reached dst")
	}
}

// A stop between frames sends the close frame at once.
func TestPipeStopsBetweenFrames(t *testing.T) {
	var dst bytes.Buffer
	pp := testPipe(&dst)
	first := testFrame(true, 0x2, 10, false)
	if err := pp.forward(first); err != nil {
		t.Fatal(err)
	}
	closing := closeFrame(closeGoingAway, "bye", false)
	pp.stop(closing)
	if want := append(append([]byte{}, first...), closing...); !bytes.Equal(dst.Bytes(), want) {
		t.Fatalf("dst = % x, want % x", dst.Bytes(), want)
	}
}

// A destination that got the source's close frame already gets no second
// one.
func TestPipeNoSecondClose(t *testing.T) {
	var dst bytes.Buffer
	pp := testPipe(&dst)
	theirs := testFrame(true, opClose, 2, true)
	if err := pp.forward(theirs); err != nil {
		t.Fatal(err)
	}
	pp.stop(closeFrame(closeGoingAway, "bye", true))
	if !bytes.Equal(dst.Bytes(), theirs) {
		t.Errorf("dst = % x, want only the source's close frame", dst.Bytes())
	}
	if got := closeReason(pp.by.Load() - 1); got != closedClient {
		t.Errorf("reason %s, want client", closeReasons[got])
	}
}

func TestPipeForwardDoesNotAllocate(t *testing.T) {
	pp := testPipe(io.Discard)
	var chunk []byte
	for chunk = nil; len(chunk) < 30<<10; {
		chunk = append(chunk, testFrame(true, 0x2, 100, true)...)
		chunk = append(chunk, testFrame(true, 0x2, 1000, true)...)
	}
	if n := testing.AllocsPerRun(100, func() { _ = pp.forward(chunk) }); n != 0 {
		t.Errorf("forward allocates %v times per chunk, want 0", n)
	}
}

func BenchmarkPipeForward(b *testing.B) {
	for _, size := range []int{100, 4096} {
		var chunk []byte
		for len(chunk) < 32<<10-size-14 {
			chunk = append(chunk, testFrame(true, 0x2, size, true)...)
		}
		b.Run("frames of "+strconv.Itoa(size), func(b *testing.B) {
			pp := testPipe(io.Discard)
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				_ = pp.forward(chunk)
			}
		})
	}
}
