package relay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cutoverproxy/cutover/internal/rawio"
	"golang.org/x/sys/unix"
)

const (
	// bufSize is the loop's read buffer: a read that fills it makes its
	// direction a bulk transfer, which then goes by splice.
	bufSize = 16 << 10
	// pipeSize is the capacity asked for a bulk direction's pipe, and the
	// most one splice moves (Go's io.Copy uses the same).
	pipeSize = 1 << 20
	// spliceFlags: neither end waits.
	spliceFlags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE
	// arenaSize is what one pass can read before it writes (see pass):
	// room for 16 reads that fill the buffer, far more small ones.
	arenaSize = 16 * bufSize
	// turns bounds the reads one wake-up spends on a Pair before the loop
	// serves the others; a Pair with more to do waits for the next pass.
	turns = 8
	// wakeID is the epoll data of the loop's eventfd.
	wakeID = -1
)

// ErrClosed is the error of a Pair ended by Close.
var ErrClosed = errors.New("relay: closed")

// Pair is two connections whose bytes a loop moves both ways.
type Pair struct {
	done chan struct{}
	err  error // why the Pair ended; nil when both sides ended cleanly
	l    *loop
	// peer is side 1's remote address: settle writes to each backend's
	// Pairs one after the other.
	peer netip.AddrPort
	// closing is set by Close; the loop ends the Pair.
	closing atomic.Bool
	// moved counts the bytes written both ways (see Moved).
	moved atomic.Uint64

	// Owned by the loop.
	id     int
	side   [2]side
	dir    [2]direction // dir[i] moves side i's bytes to side 1-i
	added  bool         // registered with the loop's epoll set
	ended  bool
	queued bool // on the loop's list of Pairs with more to do
	dirty  bool // on the loop's list of Pairs the current pass saw
}

// side is one socket of a Pair.
type side struct {
	fd       int
	readable bool // it may have bytes or its end to read
	writable bool // a write may succeed
	// hup: epoll reported the peer's close (or an error). A short read
	// then does not mean drained: the end is still to be read, and no
	// new edge would announce it.
	hup bool
	// urgent: epoll reported TCP urgent data, at whose mark a read stops
	// short: a short read does not mean drained either.
	urgent bool
	// failed: epoll reported an error in the current pass.
	failed bool
}

// direction is what a Pair has read from one side and not yet written to
// the other.
type direction struct {
	n       *atomic.Uint64 // bytes written, counted as they go
	pending []byte         // read but not written (buffer mode)
	pipe    [2]int         // bulk mode: the pipe's read and write ends; -1 before
	inPipe  int            // bytes in the pipe
	eof     bool           // the source ended its sending
	shut    bool           // the destination's sending half is shut
}

func (d *direction) busy() bool { return len(d.pending) > 0 || d.inPipe > 0 }

// Done is closed when the Pair has ended and both sockets are closed.
func (p *Pair) Done() <-chan struct{} { return p.done }

// Err says why the Pair ended, once Done is closed: nil when both sides
// ended their sending cleanly, ErrClosed after Close, or the error of a
// read or write.
func (p *Pair) Err() error {
	<-p.done
	return p.err
}

// Moved returns how many bytes the Pair has written, both ways together:
// a caller that reads it now and then sees whether bytes went through
// meanwhile (an idle timeout). Bytes read but not written, held back by a
// destination that takes none, do not count.
func (p *Pair) Moved() uint64 { return p.moved.Load() }

// Close ends the Pair: both sockets are closed. It does not wait; Done
// says when it is over. It is safe to call from any goroutine, any number
// of times.
func (p *Pair) Close() {
	if p.closing.Swap(true) {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.l.submit(p)
}

// Start hands a and b to a loop and returns their Pair, or false when it
// cannot: a or b is not a *net.TCPConn, or the system refused a
// descriptor. On false, a and b are untouched and the caller copies
// itself; on true, they are closed and the Pair owns their sockets. Bytes
// from a to b are added to na, from b to a to nb. b is the backend: the
// writes of a pass toward Pairs' b sides go out grouped by b's remote
// address.
func Start(a, b net.Conn, na, nb *atomic.Uint64) (*Pair, bool) {
	l := pickLoop()
	if l == nil {
		return nil, false
	}
	return l.start(a, b, na, nb)
}

// start is Start on loop l.
func (l *loop) start(a, b net.Conn, na, nb *atomic.Uint64) (*Pair, bool) {
	fa, ok := dupFD(a)
	if !ok {
		return nil, false
	}
	fb, ok := dupFD(b)
	if !ok {
		unix.Close(fa)
		return nil, false
	}
	_ = a.Close()
	_ = b.Close()
	p := &Pair{done: make(chan struct{}), l: l, peer: peerOf(b)}
	p.side[0] = side{fd: fa}
	p.side[1] = side{fd: fb}
	p.dir[0] = direction{n: na, pipe: [2]int{-1, -1}}
	p.dir[1] = direction{n: nb, pipe: [2]int{-1, -1}}
	l.submit(p)
	return p, true
}

// peerOf returns c's remote address, or the zero AddrPort.
func peerOf(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// dupFD returns a duplicate of c's socket, non-blocking as c's is.
func dupFD(c net.Conn) (int, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 3)
	})
	if cerr != nil || err != nil {
		return -1, false
	}
	return fd, true
}

// loop is one event loop: an epoll set, an eventfd that wakes it, and the
// goroutine that runs while it has Pairs.
type loop struct {
	epfd, wakefd int
	file         *os.File        // owns epfd
	raw          syscall.RawConn // the epoll set in Go's poller

	mu      sync.Mutex
	running bool
	inbox   []*Pair // new Pairs, and Pairs to close
	mail    atomic.Bool

	// Owned by the goroutine.
	pairs []*Pair // by id
	free  []int
	live  int
	again []*Pair // Pairs with more to do after their turns
	buf   []byte
	// arena holds what a pass's first round read until its second
	// writes it (see pass); used is how much of it is taken.
	arena []byte
	used  int
	dirty []*Pair // the Pairs of the current pass
	// fulls and copies count how often a pass filled the arena and how
	// often bytes that a full destination left were copied out of it,
	// for the tests that make both happen.
	fulls, copies int
}

var (
	loops     []*loop
	loopsOnce sync.Once
	nextLoop  atomic.Uint32
)

// pickLoop returns the next loop in turn, or nil when no loop could be
// made.
func pickLoop() *loop {
	loopsOnce.Do(func() {
		for range runtime.GOMAXPROCS(0) {
			if l := newLoop(); l != nil {
				loops = append(loops, l)
			}
		}
	})
	if len(loops) == 0 {
		return nil
	}
	return loops[int(nextLoop.Add(1))%len(loops)]
}

func newLoop() *loop {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil
	}
	// The epoll set is readable while it has events: Go's poller waits
	// for that, so the loop never blocks a thread in epoll_wait (which
	// would make the runtime hand the thread's processor to another).
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil
	}
	// The File owns epfd from here: it closes it, once.
	file := os.NewFile(uintptr(epfd), "relay-epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		unix.Close(wakefd)
		return nil
	}
	return &loop{epfd: epfd, wakefd: wakefd, file: file, raw: raw}
}

// submit gives the loop a new Pair or one to close, starting the loop's
// goroutine when it does not run.
func (l *loop) submit(p *Pair) {
	l.mu.Lock()
	l.inbox = append(l.inbox, p)
	l.mail.Store(true)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.run()
		return
	}
	one := uint64(1)
	_, _ = unix.Write(l.wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// run serves the loop's Pairs until none is left. Its passes run inside
// one RawConn.Read of the epoll set: after a pass that emptied the set's
// ready list, the callback returns false and Go's poller parks the
// goroutine until the set is readable again. Readiness is cleared only when
// Read begins, not between passes, so an edge raised during a pass wakes
// the next at once, and a pass needs no epoll_wait that finds nothing.
func (l *loop) run() {
	l.init()
	events := make([]unix.EpollEvent, 128)
	for {
		if (l.mail.Load() || l.live == 0) && !l.readMail() {
			return // no Pair left
		}
		var err error
		rerr := l.raw.Read(func(uintptr) bool {
			for {
				var n int
				n, err = rawio.PollNow(l.epfd, events)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					return true
				}
				l.pass(events[:n])
				if l.mail.Load() || l.live == 0 {
					return true // back to readMail
				}
				if n < len(events) && len(l.again) == 0 {
					return false // nothing left: wait for the set
				}
			}
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			l.endAll(err)
		}
	}
}

// init makes the loop's buffers, once.
func (l *loop) init() {
	if l.buf == nil {
		l.buf = make([]byte, bufSize)
		l.arena = make([]byte, arenaSize)
	}
}

// pass serves the Pairs of events in two rounds: first one read of every
// socket that became readable, its bytes kept in the loop's arena; then the
// writes of all of them, and whatever else each Pair has to do (serve). The
// writes of one pass go out together, so a peer woken by the first may find
// the others' bytes when it looks again and serve them in the same wake-up.
// Then the Pairs that had more to do.
func (l *loop) pass(events []unix.EpollEvent) {
	for i := range events {
		ev := &events[i]
		if ev.Fd == wakeID {
			var b [8]byte
			_, _ = unix.Read(l.wakefd, b[:])
			continue
		}
		p := l.pairs[ev.Fd>>1]
		if p == nil {
			continue
		}
		s := int(ev.Fd & 1)
		p.note(s, ev.Events)
		l.early(p, s)
	}
	l.settle()
	if len(l.again) > 0 {
		again := l.again
		l.again = nil
		for _, p := range again {
			p.queued = false
			if !p.ended {
				l.serve(p)
			}
		}
	}
}

// readMail adds new Pairs and ends closed ones. It returns false when the
// loop has nothing left and its goroutine stops.
func (l *loop) readMail() bool {
	for {
		l.mu.Lock()
		inbox := l.inbox
		l.inbox = nil
		l.mail.Store(false)
		if len(inbox) == 0 && l.live == 0 {
			l.again = nil // ended Pairs only
			l.running = false
			l.mu.Unlock()
			return false
		}
		l.mu.Unlock()
		for _, p := range inbox {
			switch {
			case p.ended:
			case !p.added:
				l.add(p)
			default:
				l.end(p, ErrClosed)
			}
		}
		if l.live > 0 {
			return true
		}
	}
}

// add registers a new Pair's sockets. A Pair closed before it was added
// ends here.
func (l *loop) add(p *Pair) {
	if len(l.free) > 0 {
		p.id = l.free[len(l.free)-1]
		l.free = l.free[:len(l.free)-1]
	} else {
		p.id = len(l.pairs)
		l.pairs = append(l.pairs, nil)
	}
	l.pairs[p.id] = p
	l.live++
	p.added = true
	for i := range p.side {
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
			Fd:     int32(p.id<<1 | i),
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, p.side[i].fd, &ev); err != nil {
			l.end(p, err)
			return
		}
	}
	if p.closing.Load() {
		l.end(p, ErrClosed)
	}
	// No pass here: registering a socket queues an event for what it
	// already is (writable, and readable if bytes arrived before).
}

// note records what epoll said of side s.
func (p *Pair) note(s int, ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.side[s].readable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.side[s].hup = true
	}
	// Urgent data: a read stops short at its mark with bytes after it.
	p.side[s].urgent = ev&unix.EPOLLPRI != 0
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.side[s].writable = true
	}
	if ev&unix.EPOLLERR != 0 {
		p.side[s].failed = true
	}
}

// early is a pass's first round for side s of p: one read, as pull's,
// whose bytes wait in the arena for settle to write them. It reads only
// where pull would (something to read, nothing pending, somewhere to
// write it) and leaves bulk directions (splice) to serve.
func (l *loop) early(p *Pair, s int) {
	if len(l.arena)-l.used < bufSize {
		l.fulls++
		l.settle() // the arena is full: write what it holds first
	}
	if p.ended {
		return // before this pass's event, or in that settle
	}
	if !p.dirty {
		p.dirty = true
		l.dirty = append(l.dirty, p)
	}
	dir, src := &p.dir[s], &p.side[s]
	if dir.eof || !src.readable || dir.busy() || dir.pipe[0] >= 0 || !p.side[1-s].writable {
		return
	}
	dir.pending = l.read(p, s, l.arena[l.used:l.used+bufSize])
	l.used += len(dir.pending)
}

// settle is a pass's second round: every Pair that early saw is served
// (its bytes from the arena written, and more moved as serve does), and
// what a full destination left of them is copied out of the arena, which
// is then free again.
func (l *loop) settle() {
	l.order()
	for i, p := range l.dirty {
		l.dirty[i] = nil
		p.dirty = false
		if p.ended {
			continue
		}
		l.serve(p)
		for s := range p.side {
			if p.side[s].failed && !p.ended {
				l.failed(p, s)
			}
			p.side[s].failed = false
		}
		for d := range p.dir {
			if pd := &p.dir[d]; len(pd.pending) > 0 && l.inArena(pd.pending) {
				l.copies++
				pd.pending = append([]byte(nil), pd.pending...)
			}
		}
	}
	l.dirty = l.dirty[:0]
	l.used = 0
}

// order puts the Pairs of a pass in the order settle writes for them:
// first those with bytes toward side 1 (the backend), grouped by the
// backend's address, then the others (bytes toward the client). Each
// backend then gets its messages of the pass one after the other, and so
// do the clients: a peer on the same machine, woken by the first, finds
// the rest when it looks again. Interleaved, the peers took turns being
// woken for one message each (see the package doc for what it saves).
func (l *loop) order() {
	j := 0
	for i, p := range l.dirty {
		if len(p.dir[0].pending) > 0 {
			l.dirty[i], l.dirty[j] = l.dirty[j], l.dirty[i]
			j++
		}
	}
	slices.SortFunc(l.dirty[:j], func(a, b *Pair) int { return a.peer.Compare(b.peer) })
}

// inArena reports whether b lies in the loop's arena.
func (l *loop) inArena(b []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(l.arena)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return at >= start && at < start+uintptr(len(l.arena))
}

// failed handles an error that epoll reported on side s, after serve.
// An error on a side with nothing left to read or write (a reset after
// its end) ends the Pair all the same. A side with bytes still queued
// meets its error when a read gets to it, after them, as a goroutine
// copying would; one with bytes to write meets it in the write.
func (l *loop) failed(p *Pair, s int) {
	if !p.dir[s].eof || p.dir[1-s].busy() {
		return
	}
	if n, err := unix.GetsockoptInt(p.side[s].fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && n != 0 {
		l.end(p, syscall.Errno(n))
	}
}

// serve moves what can be moved in both directions, up to turns reads
// each, and ends the Pair when both directions are done.
func (l *loop) serve(p *Pair) {
	for d := range p.dir {
		for t := 0; ; t++ {
			if !l.flush(p, d) {
				break
			}
			if p.ended {
				return
			}
			dir, src := &p.dir[d], &p.side[d]
			if dir.eof || !src.readable || !p.side[1-d].writable {
				break // nothing to read, or nowhere to write it
			}
			if t == turns {
				if !p.queued {
					p.queued = true
					l.again = append(l.again, p)
				}
				break
			}
			l.pull(p, d)
			if p.ended {
				return
			}
		}
	}
	if p.dir[0].shut && p.dir[1].shut {
		l.end(p, nil)
	}
}

// pull reads once from side d and writes what it read to the other side.
func (l *loop) pull(p *Pair, d int) {
	dir, src := &p.dir[d], &p.side[d]
	if dir.pipe[0] >= 0 {
		n, err := rawio.Splice(src.fd, dir.pipe[1], pipeSize, spliceFlags)
		switch {
		case n > 0:
			dir.inPipe += n
			// A splice that moved less than asked may have stopped at
			// the pipe's slots, not at the socket's end: only EAGAIN
			// says the socket is drained.
		case err == unix.EAGAIN:
			src.readable = false
		case err == unix.EINTR:
		case err != nil:
			l.end(p, err)
		default:
			dir.eof = true
		}
		return
	}
	if dir.pending = l.read(p, d, l.buf); len(dir.pending) > 0 || dir.eof {
		l.flush(p, d)
		if len(dir.pending) > 0 {
			// The destination is full: keep the rest.
			dir.pending = append([]byte(nil), dir.pending...)
		}
	}
}

// read reads side d into buf once and records what the read says of the
// socket: drained, a bulk transfer, ended, or failed (the Pair ends). It
// returns the bytes read, a slice of buf.
func (l *loop) read(p *Pair, d int, buf []byte) []byte {
	dir, src := &p.dir[d], &p.side[d]
	n, err := rawio.Read(src.fd, buf)
	switch {
	case n > 0:
		switch {
		case n == len(buf):
			// A bulk transfer: its next reads splice (or, without a
			// pipe, go on through the buffer).
			l.toBulk(dir)
		case !src.hup && !src.urgent:
			src.readable = false // drained: the next bytes raise an edge
		}
		return buf[:n:n]
	case err == unix.EAGAIN:
		src.readable = false
	case err == unix.EINTR:
	case err != nil:
		l.end(p, err)
	default:
		dir.eof = true
	}
	return nil
}

// toBulk gives a direction a pipe, so that its next reads splice. Without
// a pipe (the system refused one), it stays as it is.
func (l *loop) toBulk(dir *direction) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return
	}
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	dir.pipe = fds
}

// flush writes direction d's pending bytes to the other side, and shuts
// that side's sending half once the source has ended and nothing is left.
// It reports whether d has nothing pending (the next read may proceed).
func (l *loop) flush(p *Pair, d int) bool {
	dir, dst := &p.dir[d], &p.side[1-d]
	for dir.busy() && dst.writable {
		var n int
		var err error
		if dir.inPipe > 0 {
			n, err = rawio.Splice(dir.pipe[0], dst.fd, dir.inPipe, spliceFlags)
			dir.inPipe -= max(n, 0)
		} else {
			n, err = rawio.Write(dst.fd, dir.pending)
			dir.pending = dir.pending[max(n, 0):]
		}
		if n > 0 {
			dir.n.Add(uint64(n))
			p.moved.Add(uint64(n))
		}
		switch {
		case err == unix.EAGAIN:
			dst.writable = false
		case err == unix.EINTR:
		case err != nil:
			l.end(p, err)
			return false
		}
	}
	if dir.busy() {
		return false
	}
	dir.pending = nil
	if dir.eof && !dir.shut {
		dir.shut = true
		_ = unix.Shutdown(dst.fd, unix.SHUT_WR)
	}
	return true
}

// end closes a Pair's sockets and pipes and says it ended with err.
func (l *loop) end(p *Pair, err error) {
	if p.ended {
		return
	}
	p.ended = true
	for i := range p.side {
		// Removed from the epoll set first: a descriptor that another
		// process still holds would otherwise stay in it.
		if p.added {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, p.side[i].fd, nil)
		}
		unix.Close(p.side[i].fd)
		if fds := p.dir[i].pipe; fds[0] >= 0 {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
		// The socket's number may be another socket's or pipe's next:
		// an ended Pair keeps it no more, and has nothing to read or
		// write. (Its pipe's numbers stay, closed, to say it spliced.)
		p.side[i] = side{fd: -1}
		p.dir[i].pending, p.dir[i].inPipe = nil, 0
	}
	if l.pairs[p.id] == p {
		l.pairs[p.id] = nil
		l.free = append(l.free, p.id)
		l.live--
	}
	p.err = err
	close(p.done)
}

// endAll ends every Pair of the loop with err: its epoll set failed.
func (l *loop) endAll(err error) {
	for _, p := range l.pairs {
		if p != nil {
			l.end(p, err)
		}
	}
}
