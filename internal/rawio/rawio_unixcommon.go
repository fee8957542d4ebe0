//go:build unix

package rawio

import "syscall"

// ReadNow is Read for a syscall.RawConn's Read callback: retried when a
// signal interrupted it, and done false (with no error) when the socket
// has nothing to read yet, so that the callback asks to wait.
func ReadNow(fd int, p []byte) (n int, err error, done bool) {
	for {
		n, err = Read(fd, p)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil, false
		}
		return n, err, true
	}
}
