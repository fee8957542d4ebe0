//go:build !linux

package main

import "syscall"

// deferAccept does nothing: TCP_DEFER_ACCEPT is Linux's.
func deferAccept(network, address string, c syscall.RawConn) error { return nil }
