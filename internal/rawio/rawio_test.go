//go:build linux

package rawio

import (
	"bytes"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketPair is two connected non-blocking stream sockets.
func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestCallsReportWhatTheSystemCallsDo(t *testing.T) {
	a, b := socketPair(t)
	buf := make([]byte, 64)
	if n, err := Read(a, buf); n != 0 || err != syscall.EAGAIN {
		t.Errorf("Read of an empty socket = %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Peek(a, buf); n != 0 || err != syscall.EAGAIN {
		t.Errorf("Peek of an empty socket = %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Write(b, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := Peek(a, buf[:1]); n != 1 || err != nil || buf[0] != 'h' {
		t.Errorf("Peek = %d, %v, %q; want 1, nil, h", n, err, buf[:1])
	}
	if n, err := Read(a, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Errorf("Read = %d, %v, %q; want the peeked bytes still there", n, err, buf[:max(n, 0)])
	}
	// Writev skips empty buffers and takes the first maxIovecs others.
	var v [][]byte
	var want []byte
	for i := range maxIovecs + 4 {
		v = append(v, nil, []byte{byte('a' + i)})
		if i < maxIovecs {
			want = append(want, byte('a'+i))
		}
	}
	if n, err := Writev(b, v); n != maxIovecs || err != nil {
		t.Fatalf("Writev = %d, %v; want %d, nil", n, err, maxIovecs)
	}
	if n, _ := Read(a, buf); !bytes.Equal(buf[:n], want) {
		t.Errorf("after Writev the peer read %q, want %q", buf[:n], want)
	}
	if n, err := Writev(b, [][]byte{nil, {}}); n != 0 || err != nil {
		t.Errorf("Writev of nothing = %d, %v; want 0, nil", n, err)
	}
	unix.Shutdown(b, unix.SHUT_WR)
	if n, err := Read(a, buf); n != 0 || err != nil {
		t.Errorf("Read after the peer's close = %d, %v; want 0, nil (the end)", n, err)
	}
	if _, err := Write(-1, buf); err != syscall.EBADF {
		t.Errorf("Write to no descriptor: %v, want EBADF", err)
	}
}

func TestReadNowSaysWhenToWait(t *testing.T) {
	a, b := socketPair(t)
	buf := make([]byte, 8)
	if n, err, done := ReadNow(a, buf); n != 0 || err != nil || done {
		t.Errorf("ReadNow of an empty socket = %d, %v, %v; want 0, nil, false (wait)", n, err, done)
	}
	Write(b, []byte("abc"))
	if n, err, done := ReadNow(a, buf); n != 3 || err != nil || !done {
		t.Errorf("ReadNow = %d, %v, %v; want 3, nil, true", n, err, done)
	}
	unix.Shutdown(b, unix.SHUT_WR)
	if n, err, done := ReadNow(a, buf); n != 0 || err != nil || !done {
		t.Errorf("ReadNow at the end = %d, %v, %v; want 0, nil, true", n, err, done)
	}
	if _, err, done := ReadNow(-1, buf); err != syscall.EBADF || !done {
		t.Errorf("ReadNow of no descriptor: %v, %v; want EBADF, true", err, done)
	}
}

func TestPollNowDoesNotWait(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	a, b := socketPair(t)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, a, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a)}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	if n, err := PollNow(epfd, events); n != 0 || err != nil {
		t.Errorf("PollNow with nothing ready = %d, %v; want 0, nil", n, err)
	}
	Write(b, []byte("x"))
	if n, err := PollNow(epfd, events); n != 1 || err != nil || events[0].Fd != int32(a) {
		t.Errorf("PollNow with a readable socket = %d, %v; want 1, nil", n, err)
	}
}

func TestSpliceMovesBytesThroughAPipe(t *testing.T) {
	a, b := socketPair(t)
	c, d := socketPair(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	const flags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE
	if n, err := Splice(a, p[1], 1<<20, flags); n != 0 || err != syscall.EAGAIN {
		t.Errorf("Splice of an empty socket = %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Splice(p[0], d, 1<<20, flags); n != 0 || err != syscall.EAGAIN {
		t.Errorf("Splice of an empty pipe = %d, %v; want 0, EAGAIN", n, err)
	}
	Write(b, []byte("hello, pipe"))
	if n, err := Splice(a, p[1], 5, flags); n != 5 || err != nil {
		t.Fatalf("Splice of 5 into the pipe = %d, %v", n, err)
	}
	if n, err := Splice(p[0], d, 5, flags); n != 5 || err != nil {
		t.Fatalf("Splice out of the pipe = %d, %v", n, err)
	}
	buf := make([]byte, 64)
	if n, _ := Read(c, buf); string(buf[:n]) != "hello" {
		t.Errorf("through the pipe came %q, want hello", buf[:n])
	}
	if n, _ := Read(a, buf); string(buf[:n]) != ", pipe" {
		t.Errorf("the socket kept %q, want the rest", buf[:n])
	}
	unix.Shutdown(b, unix.SHUT_WR)
	if n, err := Splice(a, p[1], 1<<20, flags); n != 0 || err != nil {
		t.Errorf("Splice after the peer's close = %d, %v; want 0, nil (the end)", n, err)
	}
}

// Accept4 takes a connection from the queue with the peer's address, and
// says EAGAIN when there is none; Getsockname reads an address; Close
// closes the connection.
func TestAcceptGetsocknameAndClose(t *testing.T) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 8); err != nil {
		t.Fatal(err)
	}
	var sa unix.RawSockaddrAny
	if fd, err := Accept4(lfd, &sa, unix.SOCK_NONBLOCK); fd != 0 || err != syscall.EAGAIN {
		t.Fatalf("Accept4 of an empty queue = %d, %v; want 0, EAGAIN", fd, err)
	}
	if err := Getsockname(lfd, &sa); err != nil {
		t.Fatal(err)
	}
	listening := *(*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: listening.Addr, Port: int(listening.Port>>8 | listening.Port<<8)}); err != nil {
		t.Fatal(err)
	}
	clientAddr, err := unix.Getsockname(cfd)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := Accept4(lfd, &sa, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	peer := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
	want := clientAddr.(*unix.SockaddrInet4)
	if sa.Addr.Family != unix.AF_INET || peer.Addr != want.Addr || int(peer.Port>>8|peer.Port<<8) != want.Port {
		t.Errorf("Accept4's peer %v:%d, want %v:%d", peer.Addr, peer.Port>>8|peer.Port<<8, want.Addr, want.Port)
	}
	if err := Close(fd); err != nil {
		t.Errorf("Close = %v", err)
	}
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(cfd, make([]byte, 8)); n != 0 || err != nil {
		t.Errorf("the client read %d, %v after Close; want 0, nil (the end)", n, err)
	}
}
