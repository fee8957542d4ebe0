//go:build unix && !linux

package rawio

import (
	"errors"
	"syscall"
)

// Supported says that the functions work here: as announced system calls.
const Supported = true

func Read(fd int, p []byte) (int, error) { return count(syscall.Read(fd, p)) }

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
