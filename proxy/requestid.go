package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"sync/atomic"
)

// requestIDs makes request IDs: a random per-process prefix and a counter,
// unique across processes and cheap to make.
type requestIDs struct {
	prefix [8]byte
	next   atomic.Uint64
}

func newRequestIDs() *requestIDs {
	g := &requestIDs{}
	_, _ = rand.Read(g.prefix[:])
	return g
}

func (g *requestIDs) make() string {
	var b [16]byte
	copy(b[:8], g.prefix[:])
	binary.BigEndian.PutUint64(b[8:], g.next.Add(1))
	var out [2 * len(b)]byte
	hex.Encode(out[:], b[:])
	return string(out[:]) // one allocation: EncodeToString makes two
}

// requestID returns the client's X-Request-Id when it is reasonable, or a
// new one.
func (g *requestIDs) of(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	return g.make()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
