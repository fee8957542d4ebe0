package balancer

import (
	"slices"
	"testing"
)

func TestLeastConnPicksLowestLoad(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		inFlight []int64
		down     []int
		tried    Tried
		want     int
	}{
		{"min", []int{1, 1, 1}, []int64{5, 2, 7}, nil, 0, 1},
		{"min down", []int{1, 1, 1}, []int64{5, 2, 7}, []int{1}, 0, 0},
		{"min tried", []int{1, 1, 1}, []int64{5, 2, 7}, nil, Tried(0).Add(1), 0},
		{"per weight", []int{3, 1}, []int64{3, 2}, nil, 0, 0},
		{"per weight other way", []int{1, 3}, []int64{1, 6}, nil, 0, 0},
		{"negative counts as zero", []int{1, 1}, []int64{1, -4}, nil, 0, 1},
		{"all down", []int{1, 1}, []int64{0, 0}, []int{0, 1}, 0, -1},
		{"all tried", []int{1, 1}, []int64{0, 0}, nil, Tried(0).Add(0).Add(1), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbs, bs := newBackends(tt.weights...)
			for i, n := range tt.inFlight {
				tbs[i].inFlight.Store(n)
			}
			for _, i := range tt.down {
				tbs[i].down.Store(true)
			}
			p := NewLeastConn(bs, seqRand(3))
			for range 10 {
				if got := p.Pick(nil, tt.tried); got != tt.want {
					t.Fatalf("Pick = %d, want %d", got, tt.want)
				}
			}
		})
	}
}

func TestLeastConnSpreadsTies(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		inFlight []int64
		down     []int
		want     []int // exact counts over 600 picks
	}{
		{"idle equal", []int{1, 1, 1}, []int64{0, 0, 0}, nil, []int{200, 200, 200}},
		{"idle, first down", []int{1, 1, 1}, []int64{0, 0, 0}, []int{0}, []int{0, 300, 300}},
		{"idle weighted", []int{2, 1}, []int64{0, 0}, nil, []int{400, 200}},
		{"tie per weight", []int{2, 1, 1}, []int64{4, 2, 3}, nil, []int{400, 200, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbs, bs := newBackends(tt.weights...)
			for i, n := range tt.inFlight {
				tbs[i].inFlight.Store(n)
			}
			for _, i := range tt.down {
				tbs[i].down.Store(true)
			}
			p := NewLeastConn(bs, seqRand(5))
			if got := counts(p, len(bs), 600, nil, 0); !slices.Equal(got, tt.want) {
				t.Errorf("counts = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLeastConnFollowsLoad simulates requests that never finish: every pick
// adds one in flight, so picks must fill backends in proportion to weight.
func TestLeastConnFollowsLoad(t *testing.T) {
	tbs, bs := newBackends(1, 2, 3)
	p := NewLeastConn(bs, seqRand(9))
	for range 600 {
		tbs[p.Pick(nil, 0)].inFlight.Add(1)
	}
	for i, want := range []int64{100, 200, 300} {
		if got := tbs[i].inFlight.Load(); got != want {
			t.Errorf("backend %d has %d in flight, want %d", i, got, want)
		}
	}
}
