//go:build !linux

package front

import "net"

// newAcceptor returns ln.Accept and ln: fastConn is Linux's.
func newAcceptor(ln net.Listener, _ bool) (func() (net.Conn, error), net.Listener) {
	return ln.Accept, ln
}
