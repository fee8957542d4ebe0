// Package reqctx lets the server that made a request's context run one
// function when that context ends, without a lock or an allocation: the
// proxy uses it to stop a backend exchange whose client went away.
//
// Why: context.AfterFunc, the general way, allocates twice and takes the
// parent context's mutex twice per call (to register and to stop). On the
// request path of cutover's HTTP/1.1 server (proxy/front), every request
// would pay that. A Hook is one atomic slot in the connection's context:
// the proxy arms it with a function at the start of an exchange and
// disarms it at the end; the server fires it when it cancels the context.
//
// The contract that makes the race safe: the cancel of WithCancel ends
// the context first and fires the Hook after; whoever arms a Hook checks
// the context's Err after arming. Either Fire sees the function, or the
// check sees the context ended (or both: the function must bear being
// run twice). A context that ends through its parent fires the Hook too.
// From gives the Hook for the context WithCancel made only, not for
// contexts derived from it, which can end on their own.
package reqctx

import (
	"context"
	"sync/atomic"
)

// Hook is one function to run when a context ends. The zero value is an
// empty Hook.
type Hook struct {
	f   atomic.Pointer[func()]
	ctx context.Context // whose end fires the Hook
}

// Arm sets f as the function to run, unless one is set (then it reports
// false: use context.AfterFunc).
func (h *Hook) Arm(f *func()) bool { return h.f.CompareAndSwap(nil, f) }

// Disarm removes f and reports whether it did: false means Fire took f
// (it runs or ran) or f was not armed.
func (h *Hook) Disarm(f *func()) bool { return h.f.CompareAndSwap(f, nil) }

// Fire runs the armed function, if any, and empties the Hook. The server
// calls it after cancelling the context.
func (h *Hook) Fire() {
	if f := h.f.Swap(nil); f != nil {
		(*f)()
	}
}

type key struct{}

// WithCancel is context.WithCancel, with a Hook that its cancel fires
// after ending the context. When parent can end too, the Hook also fires
// when the context ends through it (through context.AfterFunc, once per
// context: the request path's arm and disarm stay lock-free).
func WithCancel(parent context.Context) (context.Context, context.CancelFunc, *Hook) {
	h := new(Hook)
	ctx, cancel := context.WithCancel(context.WithValue(parent, key{}, h))
	h.ctx = ctx
	if parent.Done() != nil {
		context.AfterFunc(ctx, h.Fire)
	}
	return ctx, func() { cancel(); h.Fire() }, h
}

// From returns the Hook that ctx's end fires, or nil: ctx must be a
// context WithCancel returned.
func From(ctx context.Context) *Hook {
	if h, _ := ctx.Value(key{}).(*Hook); h != nil && h.ctx == ctx {
		return h
	}
	return nil
}
