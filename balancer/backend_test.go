package balancer

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// testBackend is a Backend whose state tests set.
type testBackend struct {
	key      string
	weight   int
	down     atomic.Bool
	inFlight atomic.Int64
	latency  atomic.Int64
}

func (b *testBackend) Available() bool        { return !b.down.Load() }
func (b *testBackend) InFlight() int64        { return b.inFlight.Load() }
func (b *testBackend) Latency() time.Duration { return time.Duration(b.latency.Load()) }
func (b *testBackend) Weight() int            { return b.weight }
func (b *testBackend) Key() string            { return b.key }

// newBackends returns one test backend per weight, keyed "b0", "b1", …,
// both as test backends and as the Backend list a policy takes.
func newBackends(weights ...int) ([]*testBackend, []Backend) {
	tbs := make([]*testBackend, len(weights))
	bs := make([]Backend, len(weights))
	for i, w := range weights {
		tbs[i] = &testBackend{key: fmt.Sprintf("b%d", i), weight: w}
		bs[i] = tbs[i]
	}
	return tbs, bs
}

// ones returns n weights of 1.
func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// seqRand returns a deterministic source that is safe for concurrent use:
// SplitMix64 over an atomic counter.
func seqRand(seed uint64) func() uint64 {
	var s atomic.Uint64
	s.Store(seed)
	return func() uint64 { return mix(s.Add(0x9e3779b97f4a7c15)) }
}

// zeroRand always returns 0: round robin then starts at the schedule's
// first turn.
func zeroRand() uint64 { return 0 }

// allKinds is one Config per Kind, with a deterministic source.
func allKinds() []Config {
	return []Config{
		{Kind: RoundRobin},
		{Kind: LeastConn},
		{Kind: P2C},
		{Kind: Random},
		{Kind: HashSource},
		{Kind: HashHeader, Name: "X-User"},
		{Kind: Cookie, Name: "sticky"},
	}
}

// mustNew builds a policy or panics.
func mustNew(cfg Config, bs []Backend) Policy {
	p, err := New(cfg, bs)
	if err != nil {
		panic(err)
	}
	return p
}

// request returns a request from addr with header X-User and cookie
// sticky set when not empty.
func request(addr, user, sticky string) *http.Request {
	r := &http.Request{RemoteAddr: addr, Header: http.Header{}}
	if user != "" {
		r.Header.Set("X-User", user)
	}
	if sticky != "" {
		r.Header.Set("Cookie", "theme=dark; sticky="+sticky)
	}
	return r
}

// counts picks n times and returns how often each index was picked.
func counts(p Policy, size, n int, r *http.Request, tried Tried) []int {
	c := make([]int, size)
	for range n {
		if i := p.Pick(r, tried); i >= 0 {
			c[i]++
		}
	}
	return c
}
