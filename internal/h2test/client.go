// Package h2test is a raw HTTP/2 client for tests that need to do what
// net/http's client never does: grant a stream no flow-control window, or
// grant it by hand, while the connection stays healthy. Only tests use it.
package h2test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Start writes the client's preface on w: the magic, SETTINGS giving each
// new stream streamWindow bytes of window, and all the connection's window
// there is, so that only the streams' windows hold the server back.
func Start(w io.Writer, streamWindow uint32) error {
	if _, err := io.WriteString(w, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(w, nil)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow}); err != nil {
		return err
	}
	return fr.WriteWindowUpdate(0, 1<<31-1-65535)
}

// Get writes a GET of path on stream id, with no body.
func Get(fr *http2.Framer, id uint32, scheme, authority, path string) error {
	return request(fr, id, "GET", scheme, authority, path)
}

// request writes a request without a body on stream id.
func request(fr *http2.Framer, id uint32, method, scheme, authority, path string) error {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", method}, {":scheme", scheme}, {":authority", authority}, {":path", path}} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return err
		}
	}
	return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
}

// Event is a frame the client read: its type and stream, a DATA frame's
// bytes, a HEADERS frame's fields, whether it ended its stream, a
// RST_STREAM's code, and when it arrived.
type Event struct {
	Type   http2.FrameType
	Stream uint32
	Data   string
	Fields []hpack.HeaderField
	End    bool
	Code   http2.ErrCode
	At     time.Time
}

// Client is an HTTP/2 connection that reads every frame the server sends,
// acknowledges SETTINGS and answers PINGs, so that the connection stays
// busy and healthy, and grants streams window only when told to.
type Client struct {
	t      testing.TB
	mu     sync.Mutex // serializes writes
	w      *http2.Framer
	scheme string
	events chan Event
	held   map[uint32][]Event // read by Until for another stream than theirs
}

// NewClient starts HTTP/2 on c (see Start) and reads its frames until it
// ends. The test's cleanup closes c.
func NewClient(t testing.TB, c net.Conn, scheme string, streamWindow uint32) *Client {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	if err := Start(c, streamWindow); err != nil {
		t.Fatalf("start HTTP/2: %v", err)
	}
	hc := &Client{t: t, w: http2.NewFramer(c, nil), scheme: scheme, events: make(chan Event, 1024), held: map[uint32][]Event{}}
	r := http2.NewFramer(nil, c)
	r.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	go hc.read(r)
	return hc
}

// write writes the test's frames: one that fails fails the test.
func (hc *Client) write(f func(*http2.Framer) error) {
	if err := hc.writeErr(f); err != nil {
		hc.t.Errorf("write a frame: %v", err)
	}
}

func (hc *Client) writeErr(f func(*http2.Framer) error) error {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return f(hc.w)
}

// read turns frames into events until the connection ends. A test that
// reads no more events stops it once 1024 are queued.
func (hc *Client) read(r *http2.Framer) {
	defer close(hc.events)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return
		}
		ev := Event{Type: f.Header().Type, Stream: f.Header().StreamID, At: time.Now()}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() { // the connection may be closing: no error to report
				_ = hc.writeErr(func(w *http2.Framer) error { return w.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = hc.writeErr(func(w *http2.Framer) error { return w.WritePing(true, f.Data) })
			}
		case *http2.DataFrame:
			ev.Data, ev.End = string(f.Data()), f.StreamEnded()
		case *http2.MetaHeadersFrame:
			ev.Fields, ev.End = f.Fields, f.StreamEnded()
		case *http2.RSTStreamFrame:
			ev.Code = f.ErrCode
		}
		hc.events <- ev
	}
}

// Get asks for path on stream id (odd, each higher than the last).
func (hc *Client) Get(id uint32, authority, path string) {
	hc.write(func(w *http2.Framer) error { return Get(w, id, hc.scheme, authority, path) })
}

// Head asks for path with HEAD on stream id.
func (hc *Client) Head(id uint32, authority, path string) {
	hc.write(func(w *http2.Framer) error { return request(w, id, "HEAD", hc.scheme, authority, path) })
}

// Rest returns the events that Until kept for other streams and those
// that arrive within the given time, or until the connection ends.
func (hc *Client) Rest(within time.Duration) []Event {
	var rest []Event
	for _, evs := range hc.held {
		rest = append(rest, evs...)
	}
	clear(hc.held)
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-hc.events:
			if !ok {
				return rest
			}
			rest = append(rest, ev)
		case <-timeout:
			return rest
		}
	}
}

// Grant gives stream id n more bytes of window.
func (hc *Client) Grant(id, n uint32) {
	hc.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(id, n) })
}

// Until reads events of stream id until one that ends it (END_STREAM or
// RST_STREAM) and returns that one and the stream's DATA before it.
// Other streams' events are kept for their own Until; the connection's
// (stream 0) are dropped. It fails the test when the connection ends
// first or after within.
func (hc *Client) Until(id uint32, within time.Duration) (Event, string) {
	hc.t.Helper()
	var data strings.Builder
	timeout := time.After(within)
	for {
		var ev Event
		if held := hc.held[id]; len(held) > 0 {
			ev, hc.held[id] = held[0], held[1:]
		} else {
			select {
			case e, ok := <-hc.events:
				if !ok {
					hc.t.Fatalf("stream %d: the connection ended", id)
				}
				ev = e
			case <-timeout:
				hc.t.Fatalf("stream %d: no end within %v", id, within)
			}
		}
		if ev.Stream != id {
			if ev.Stream != 0 {
				hc.held[ev.Stream] = append(hc.held[ev.Stream], ev)
			}
			continue
		}
		data.WriteString(ev.Data)
		if ev.End || ev.Type == http2.FrameRSTStream {
			return ev, data.String()
		}
	}
}
