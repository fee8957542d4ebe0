package front

import "net"

// outSize is how many bytes a response gathers before it writes: a head
// and a small body go out in one write.
const outSize = 4 << 10

// out is the write side of a response: small writes gather in buf; a
// write that does not fit goes out with what is gathered in one writev.
// The first failed write is kept and returned by every later one, and it
// calls gone: as net/http does, a connection that can no longer be written
// ends its requests' context, so that a stream whose backend is quiet
// (server-sent events) does not hold the backend until its next bytes.
type out struct {
	c    net.Conn
	gone func()
	buf  []byte
	vec  [3][]byte
	vb   net.Buffers // over vec: a field, so that WriteTo allocates nothing
	err  error
}

func (o *out) reset(c net.Conn, gone func()) {
	o.c, o.gone, o.buf, o.err = c, gone, o.buf[:0], nil
}

// failed records err, when it is one, as the write side's end.
func (o *out) failed(err error) error {
	if err != nil && o.err == nil {
		o.err = err
		if o.gone != nil {
			o.gone()
		}
	}
	return err
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
	var err error
	switch c := o.c.(type) {
	case interface{ writev([][]byte) (int64, error) }:
		_, err = c.writev(o.vb)
	case interface {
		WriteBuffers(*net.Buffers) (int64, error)
	}:
		_, err = c.WriteBuffers(&o.vb) // sendtimeout.Conn's
	default:
		_, err = o.vb.WriteTo(o.c)
	}
	o.buf = o.buf[:0]
	o.vec = [3][]byte{}
	if o.failed(err) != nil {
		return 0, err
	}
	return len(p), nil
}

var crlfBytes = []byte("\r\n")

// flush writes what is gathered.
func (o *out) flush() error {
	if o.err != nil || len(o.buf) == 0 {
		return o.err
	}
	_, err := o.c.Write(o.buf)
	o.buf = o.buf[:0]
	return o.failed(err)
}
