//go:build unix && !linux

package rawio

import (
	"errors"
	"syscall"
)

// Supported says that the functions work here: as announced system calls.
const Supported = true

func Read(fd int, p []byte) (int, error) { return count(syscall.Read(fd, p)) }

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

func Write(fd int, p []byte) (int, error) { return count(syscall.Write(fd, p)) }

// Writev is not made here: only Linux's bare connections use it.
func Writev(int, [][]byte) (int, error) { return 0, errors.ErrUnsupported }

func Peek(fd int, p []byte) (int, error) {
	n, _, err := syscall.Recvfrom(fd, p, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return count(n, err)
}

func count(n int, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return n, nil
}
