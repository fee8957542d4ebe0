package balancer

import (
	"math"
	"testing"
)

func TestRandomDistribution(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		down    []int
		tried   Tried
		want    []float64 // shares
	}{
		{"equal", []int{1, 1, 1, 1}, nil, 0, []float64{.25, .25, .25, .25}},
		{"weighted", []int{1, 2, 3, 4}, nil, 0, []float64{.1, .2, .3, .4}},
		{"heaviest down", []int{1, 2, 3, 4}, []int{3}, 0, []float64{1. / 6, 2. / 6, 3. / 6, 0}},
		{"most down", []int{1, 1, 1, 1, 1, 1, 1, 3}, []int{0, 1, 2, 3, 4, 5}, 0,
			[]float64{0, 0, 0, 0, 0, 0, .25, .75}},
		{"tried", []int{1, 1, 2}, nil, Tried(0).Add(0), []float64{0, 1. / 3, 2. / 3}},
	}
	const n = 100_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbs, bs := newBackends(tt.weights...)
			for _, i := range tt.down {
				tbs[i].down.Store(true)
			}
			got := counts(NewRandom(bs, seqRand(17)), len(bs), n, nil, tt.tried)
			for i, share := range tt.want {
				if d := math.Abs(float64(got[i])/n - share); d > 0.01 {
					t.Errorf("backend %d share %.3f, want %.3f±0.01: %v", i, float64(got[i])/n, share, got)
				}
			}
		})
	}
}

func TestRandomExactWhenRejected(t *testing.T) {
	// A source that always lands on the ineligible backend 0 forces the
	// exact draw, which must still pick an eligible one.
	tbs, bs := newBackends(1000, 1, 1)
	tbs[0].down.Store(true)
	p := NewRandom(bs, zeroRand)
	if got := p.Pick(nil, 0); got != 1 {
		t.Errorf("Pick = %d, want 1", got)
	}
	if got := p.Pick(nil, Tried(0).Add(1)); got != 2 {
		t.Errorf("Pick = %d, want 2", got)
	}
}
