package proxy

import (
	"net/http"
	"strconv"
	"time"
)

// grpcTimeoutUnits are the units of the grpc-timeout header.
var grpcTimeoutUnits = [...]struct {
	unit byte
	d    time.Duration
}{{'H', time.Hour}, {'M', time.Minute}, {'S', time.Second}, {'m', time.Millisecond}, {'u', time.Microsecond}, {'n', time.Nanosecond}}

// grpcDeadlinePassed reports whether the request is a gRPC call whose
// deadline (its grpc-timeout, counted from when the proxy got it) has
// passed. A backend that ends such a call early did what the client
// asked: a grpc-go server resets the stream (RST_STREAM CANCEL) when the
// deadline passes, often just before the client's own timer fires. The
// client must then see DEADLINE_EXCEEDED, not a 502 or a broken stream
// (INTERNAL), and the backend must not be blamed.
func grpcDeadlinePassed(ex *exchange) bool {
	v := ex.r.Header["Grpc-Timeout"]
	if len(v) != 1 || len(v[0]) < 2 || len(v[0]) > 9 {
		return false
	}
	n, err := strconv.ParseUint(v[0][:len(v[0])-1], 10, 32)
	if err != nil {
		return false
	}
	for _, u := range grpcTimeoutUnits {
		if u.unit == v[0][len(v[0])-1] {
			return time.Since(ex.start) >= time.Duration(n)*u.d
		}
	}
	return false
}

// grpcDeadlineExceeded ends a gRPC call with status DEADLINE_EXCEEDED: a
// trailers-only response before the response headers went out, trailers
// after them.
func grpcDeadlineExceeded(w http.ResponseWriter, headerSent bool) {
	h := w.Header()
	prefix := http.TrailerPrefix
	if !headerSent {
		prefix = ""
		h["Content-Type"] = []string{"application/grpc"}
	}
	h[prefix+"Grpc-Status"] = []string{"4"}
	h[prefix+"Grpc-Message"] = []string{"cutover: deadline exceeded"}
	if !headerSent {
		w.WriteHeader(http.StatusOK)
	}
}
