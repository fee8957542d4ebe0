package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxReplayBody is the largest request body the proxy buffers so that the
// request can be sent again to another backend. Larger bodies stream
// through and are retried only when no byte of them was read.
const MaxReplayBody = 64 << 10

// requestBody is the client's request body as sent to backends.
type requestBody struct {
	// data is the whole body when replayable, else the part read ahead.
	data       []byte
	replayable bool
	rest       io.Reader // the unread rest of a body too large to buffer
}

// errBadRequestBody marks a client body that could not be read.
var errBadRequestBody = errors.New("read request body")

// readBody reads a body whose declared length is at most MaxReplayBody
// whole. A chunked body (length unknown) streams: it may be a duplex
// stream that waits for the response, and buffering it would cost memory
// for every request.
func readBody(r *http.Request) (*requestBody, error) {
	if r.ContentLength < 0 || r.ContentLength > MaxReplayBody || len(r.Trailer) > 0 {
		return &requestBody{rest: r.Body}, nil
	}
	buf := make([]byte, 0, int(r.ContentLength)+1)
	for len(buf) < cap(buf) {
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return &requestBody{data: buf, replayable: true}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadRequestBody, err)
		}
	}
	return &requestBody{data: buf, rest: r.Body}, nil
}

// next returns the body for one attempt: a fresh reader of the buffered
// body, or the streaming body. Each attempt gets its own reader, so a
// transport still reading the previous attempt's cannot disturb it.
func (b *requestBody) next() io.ReadCloser {
	if b.replayable {
		return io.NopCloser(bytes.NewReader(b.data))
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b.data), b.rest))
}

// fresh is the request's GetBody: it lets the transport resend a buffered
// body on a connection the backend closed while idle.
func (b *requestBody) fresh() (io.ReadCloser, error) { return b.next(), nil }
