//go:build !linux

package relay

import (
	"errors"
	"net"
	"sync/atomic"
)

// ErrClosed is the error of a Pair ended by Close.
var ErrClosed = errors.New("relay: closed")

// Pair is two connections whose bytes a loop moves both ways. Without
// epoll there is none: Start always reports false.
type Pair struct{}

// Start reports false: the caller copies itself.
func Start(a, b net.Conn, na, nb *atomic.Uint64) (*Pair, bool) { return nil, false }

// Done is never closed.
func (p *Pair) Done() <-chan struct{} { return nil }

// Err returns nil.
func (p *Pair) Err() error { return nil }

// Moved returns 0.
func (p *Pair) Moved() uint64 { return 0 }

// Close does nothing.
func (p *Pair) Close() {}
