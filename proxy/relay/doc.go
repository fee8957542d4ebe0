// Package relay moves bytes both ways between pairs of TCP connections on
// a few event loops that wait on epoll themselves (Linux only).
//
// Why not a goroutine per direction (io.Copy): for the small messages of
// request-response protocols (databases, brokers, echo), Go's poller costs
// each message a read that fails with EAGAIN, a park, a wake-up through the
// runtime's poller and often a switch between threads. A loop is told by
// epoll which sockets became readable and serves every ready socket of one
// epoll_wait in one pass: a message costs a read, a write and its share of
// that wait.
//
// A pass has two rounds: first one read of each readable socket, the bytes
// kept in the loop's arena (256 KiB; a full arena is written out before the
// round goes on), then the writes, ordered by destination: the messages for
// each backend (by its address) one after the other, then those for the
// clients. A peer on the same machine (a sidecar's backends, a local
// client) woken by its first message finds the others when it looks again
// and serves them in the same wake-up; written as they were read, the
// messages alternated between the peers, and each was woken for one message
// at a time. On two cores shared with the peers this took the CPU per echo
// round trip down by a tenth for the proxy and more for its peers, and the
// round trips per second up by about as much (figures in the README). A
// write that a full destination stops short leaves its rest copied out of
// the arena.
//
// How: Start duplicates the two sockets' file descriptors and closes the
// net.Conns, which takes the sockets out of Go's poller; from then on the
// Pair owns them. Each descriptor is registered once, edge-triggered, for
// reading, urgent data, writing and the peer's close, and the Pair
// remembers per socket whether it may still be readable and whether it may
// be written: a read that returns less than the buffer or fails with EAGAIN
// drained the socket (the next byte to arrive raises a new edge) unless
// epoll reported the peer's close or urgent data (a read stops short at its
// mark), and a write that stops short filled it (its drain raises one).
// Small messages go through the loop's buffer; once a read fills it, the
// direction is a bulk transfer and moves through a pipe with splice, as
// Go's io.Copy between TCP connections and HAProxy's splice-auto do, so its
// bytes do not pass through user space. The loop's reads, writes, splices
// and epoll_waits are raw system calls (internal/rawio): a loopback write
// or splice runs the receiver's TCP stack, and announced, it would let the
// runtime hand the loop's processor to another thread meanwhile.
//
// Semantics are relayTCP's in package proxy: when one side ends its sending
// cleanly, the other side's sending half is shut down once everything read
// before was written, and the other direction goes on; an error on either
// side ends both, once the bytes queued before it were read and written,
// as a goroutine copying would; Close ends both at once. Bytes written are
// added to the counters given to Start as they go.
//
// Loops run as goroutines; there are as many as GOMAXPROCS, each started
// when a Pair is given to it and ending when its last Pair ended, so an
// idle process keeps none. Pairs are spread over the loops in turn. A loop
// never blocks a thread in epoll_wait (the runtime would hand the thread's
// processor to another, with a wake-up each time): its epoll set is itself
// registered in Go's poller, the loop calls epoll_wait without waiting,
// and parks like any goroutine reading a socket when nothing is ready.
package relay
