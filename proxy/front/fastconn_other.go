//go:build !linux

package front

import "net"

// newAcceptor returns ln.Accept: fastConn is Linux's.
func newAcceptor(ln net.Listener, _ bool) func() (net.Conn, error) { return ln.Accept }
