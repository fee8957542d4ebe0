package balancer

import (
	"testing"
	"time"
)

func TestP2CPrefersCheaper(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		weights  []int
		inFlight []int64
		latency  []time.Duration
		down     []int
		want     int
	}{
		{"fewer in flight", []int{1, 1}, []int64{10, 0}, nil, nil, 1},
		{"lower latency", []int{1, 1}, []int64{3, 3}, []time.Duration{100 * ms, ms}, nil, 1},
		{"in flight times latency", []int{1, 1}, []int64{9, 0}, []time.Duration{ms, 20 * ms}, nil, 0},
		{"unknown latency is neutral", []int{1, 1}, []int64{0, 2}, []time.Duration{0, ms}, nil, 0},
		{"per weight", []int{4, 1}, []int64{3, 1}, nil, nil, 0},
		{"only one available", []int{1, 1, 1}, []int64{0, 50, 0}, nil, []int{0, 2}, 1},
		{"none available", []int{1, 1}, nil, nil, []int{0, 1}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbs, bs := newBackends(tt.weights...)
			for i, n := range tt.inFlight {
				tbs[i].inFlight.Store(n)
			}
			for i, d := range tt.latency {
				tbs[i].latency.Store(int64(d))
			}
			for _, i := range tt.down {
				tbs[i].down.Store(true)
			}
			p := NewP2C(bs, seqRand(11))
			for range 50 {
				if got := p.Pick(nil, 0); got != tt.want {
					t.Fatalf("Pick = %d, want %d", got, tt.want)
				}
			}
		})
	}
}

// TestP2CAvoidsWorst checks that with many backends the most loaded one
// is never picked: it loses to whichever other backend is drawn with it.
func TestP2CAvoidsWorst(t *testing.T) {
	tbs, bs := newBackends(ones(8)...)
	tbs[5].inFlight.Store(100)
	tbs[2].down.Store(true)
	p := NewP2C(bs, seqRand(13))
	got := counts(p, 8, 8000, nil, Tried(0).Add(7))
	for _, i := range []int{2, 5, 7} {
		if got[i] != 0 {
			t.Errorf("backend %d picked %d times, want 0: %v", i, got[i], got)
		}
	}
	for _, i := range []int{0, 1, 3, 4, 6} {
		if got[i] < 1200 { // 1600 expected each
			t.Errorf("backend %d picked %d times, want about 1600: %v", i, got[i], got)
		}
	}
}
