package main

import "syscall"

// deferAccept asks the kernel to hand over a connection only once its
// client has sent something (TCP_DEFER_ACCEPT, as nginx's "deferred" and
// HAProxy's "defer-accept"): HTTP and TLS clients speak first, and the
// request is then read at once, without a read that finds nothing and a
// wait for the next one; connections that send nothing take no goroutine.
// A client that stays silent is handed over after a second or a few, when
// the kernel's handshake retries end.
func deferAccept(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
	}); err != nil {
		return err
	}
	return serr
}
