package front

import "net"

// outSize is how many bytes a response gathers before it writes: a head
// and a small body go out in one write.
const outSize = 4 << 10

// out is the write side of a response: small writes gather in buf; a
// write that does not fit goes out with what is gathered in one writev.
type out struct {
	c   net.Conn
	buf []byte
	vec [3][]byte
	vb  net.Buffers // over vec: a field, so that WriteTo allocates nothing
	err error
}

func (o *out) reset(c net.Conn) {
	o.c, o.buf, o.err = c, o.buf[:0], nil
}

func (o *out) WriteString(s string) { o.buf = append(o.buf, s...) }

// write writes p, then CRLF when crlf is set, after what is gathered.
func (o *out) write(p []byte, crlf bool) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if len(o.buf)+len(p)+2 <= outSize {
		o.buf = append(o.buf, p...)
		if crlf {
			o.buf = append(o.buf, "\r\n"...)
		}
		return len(p), nil
	}
	o.vb = o.vec[:0]
	if len(o.buf) > 0 {
		o.vb = append(o.vb, o.buf)
	}
	o.vb = append(o.vb, p)
	if crlf {
		o.vb = append(o.vb, crlfBytes)
	}
	if vw, ok := o.c.(interface {
		writev([][]byte) (int64, error)
	}); ok {
		_, o.err = vw.writev(o.vb)
	} else {
		_, o.err = o.vb.WriteTo(o.c)
	}
	o.buf = o.buf[:0]
	o.vec = [3][]byte{}
	if o.err != nil {
		return 0, o.err
	}
	return len(p), nil
}

var crlfBytes = []byte("\r\n")

// flush writes what is gathered.
func (o *out) flush() error {
	if o.err != nil || len(o.buf) == 0 {
		return o.err
	}
	_, o.err = o.c.Write(o.buf)
	o.buf = o.buf[:0]
	return o.err
}
