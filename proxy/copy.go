package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// errClientWrite marks a failed write to the client, which is not the
// backend's fault.
var errClientWrite = errors.New("write to client")

// copyBody copies a response body to the client, flushing after every
// read when flush is set (streams, server-sent events). Write errors are
// reported as errClientWrite so the caller does not blame the backend.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	flusher, _ := w.(http.Flusher)
	var n int64
	for {
		nr, rerr := body.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, errClientWrite
			}
			if flush && flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
