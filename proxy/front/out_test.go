package front

import (
	"bytes"
	"net"
	"testing"
)

// buffersConn records how out writes to it.
type buffersConn struct {
	net.Conn
	got         bytes.Buffer
	writes, vec int
}

func (c *buffersConn) Write(p []byte) (int, error) {
	c.writes++
	return c.got.Write(p)
}

func (c *buffersConn) WriteBuffers(v *net.Buffers) (int64, error) {
	c.vec++
	return v.WriteTo(&c.got)
}

// A write that does not fit in out's buffer goes out with what is
// gathered in one call of the connection's WriteBuffers when it has one
// (a sendtimeout.Conn): head and body in one writev.
func TestOutWritesBuffersAtOnce(t *testing.T) {
	c := &buffersConn{}
	var o out
	o.buf = make([]byte, 0, outSize)
	o.reset(c, nil)
	o.WriteString("HTTP/1.1 200 OK\r\n\r\n")
	body := bytes.Repeat([]byte("b"), 2*outSize)
	if n, err := o.write(body, true); err != nil || n != len(body) {
		t.Fatalf("write: %d, %v; want %d, nil", n, err, len(body))
	}
	if c.vec != 1 || c.writes != 0 {
		t.Fatalf("the head and body went out in %d WriteBuffers and %d Writes, want one WriteBuffers", c.vec, c.writes)
	}
	if want := "HTTP/1.1 200 OK\r\n\r\n" + string(body) + "\r\n"; c.got.String() != want {
		t.Fatalf("the connection got %d bytes, not the head, body and CRLF in order (%d)", c.got.Len(), len(want))
	}
}
