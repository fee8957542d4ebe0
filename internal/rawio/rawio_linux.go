// Package rawio makes the system calls of the data path on non-blocking
// sockets without telling Go's runtime that a system call begins
// (RawSyscall, not Syscall).
//
// An announced system call (entersyscall) lets the runtime's monitor take
// the goroutine's processor away when the call is still running at its
// next look, and hand it to another thread, which it may have to wake. A
// loopback write runs the receiver's TCP stack and can take tens of
// microseconds, so under load the monitor keeps finding such calls: it
// polls every 20 µs instead of backing off, and wakes threads for
// processors that are handed back a moment later. None of these calls can
// wait (the sockets do not block, and the callers close only sockets that
// do not linger), so the processor has nothing to give away. A raw call cannot be preempted either, so a write passes at most
// maxWrite bytes (a short write, which callers handle anyway); Splice
// leaves the bound to its caller. Every function returns what the system
// call returned, the count as 0 when it failed. Under the race detector,
// the calls report the memory they read and write, and order the
// goroutines that communicate through them, as golang.org/x/sys/unix does.
//
// Elsewhere than on Linux, the functions are the announced system calls
// on Unix (Writev is unsupported there, and PollNow and Splice are not
// made, nor Accept4, Getsockname and Close, which only Linux's bare
// connections use) and fail on other systems (Supported).
package rawio

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported says that the functions work here.
const Supported = true

// maxWrite bounds the bytes of one Write or Writev: a loopback write
// runs the receiver's TCP stack, and a stop of the world waits for it.
const maxWrite = 256 << 10

// Read is read(2).
func Read(fd int, p []byte) (int, error) {
	n, err := result(syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p))))
	raceRead(p, n, err)
	return n, err
}

// Write is write(2) of up to maxWrite bytes of p.
func Write(fd int, p []byte) (int, error) {
	p = p[:min(len(p), maxWrite)]
	raceBeforeWrite()
	n, err := result(syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p))))
	raceWritten(p, n)
	return n, err
}

// maxIovecs is how many buffers one Writev passes; the rest wait for the
// next call, as a short write's would.
const maxIovecs = 16

// Writev is writev(2) of the first maxIovecs buffers of v, up to
// maxWrite bytes; empty buffers are skipped.
func Writev(fd int, v [][]byte) (int, error) {
	var iov [maxIovecs]unix.Iovec
	n, size := 0, 0
	for _, b := range v {
		if len(b) == 0 {
			continue
		}
		if n == len(iov) || size == maxWrite {
			break
		}
		b = b[:min(len(b), maxWrite-size)]
		iov[n].Base = unsafe.SliceData(b)
		iov[n].SetLen(len(b))
		n++
		size += len(b)
	}
	if n == 0 {
		return 0, nil
	}
	raceBeforeWrite()
	m, err := result(syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n)))
	raceWrittenv(v, m)
	return m, err
}

// Peek is recv(2) with MSG_PEEK and MSG_DONTWAIT into p: what the socket
// holds, without taking it, and EAGAIN when it holds nothing.
func Peek(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)),
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	n, err := result(r, 0, e)
	raceRead(p, n, err)
	return n, err
}

// Accept4 is accept4(2), which writes the peer's address to sa. The
// listening socket must not block: a raw call that waits holds its
// processor, and a stop of the world waits for it.
func Accept4(fd int, sa *unix.RawSockaddrAny, flags int) (int, error) {
	size := uint32(unix.SizeofSockaddrAny)
	nfd, err := result(syscall.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&size)), uintptr(flags), 0, 0))
	raceAddr(sa, size, err)
	return nfd, err
}

// Getsockname is getsockname(2), which writes the socket's address to sa.
func Getsockname(fd int, sa *unix.RawSockaddrAny) error {
	size := uint32(unix.SizeofSockaddrAny)
	_, err := result(syscall.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&size))))
	raceAddr(sa, size, err)
	return err
}

// raceAddr reports the address a call wrote to sa, size bytes (or fewer,
// when the kernel cut it to sa's).
func raceAddr(sa *unix.RawSockaddrAny, size uint32, err error) {
	if err == nil {
		b := (*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(sa))
		raceRead(b[:], int(min(size, unix.SizeofSockaddrAny)), nil)
	}
}

// Close is close(2) of a socket that does not linger (SO_LINGER off,
// the default), whose close does not wait. Accepted sockets inherit the
// listener's SO_LINGER.
func Close(fd int) error {
	_, err := result(syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0))
	return err
}

// Splice is splice(2) of up to n bytes from in to out with flags, where
// one of the two is a pipe. It touches no memory of the process. The caller
// bounds n: a splice out of a pipe runs the receiver's TCP stack for every
// byte it moves, and a stop of the world waits for it (proxy/relay moves
// up to its pipe's 1 MiB: 50 µs on average, at most 0.6 ms under perf
// trace, at 2 GB/s through loopback).
func Splice(in, out, n, flags int) (int, error) {
	return result(syscall.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), uintptr(flags)))
}

// PollNow is epoll_wait without waiting (epoll_pwait, which every
// architecture has).
func PollNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	return result(r, 0, e)
}

func result(r, _ uintptr, e syscall.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
