package balancer

import (
	"slices"
	"testing"
)

func TestSmoothSchedule(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint64
		want    []int32
	}{
		{"none", nil, []int32{}},
		{"one", []uint64{3}, []int32{0}},
		{"equal", []uint64{1, 1, 1}, []int32{0, 1, 2}},
		{"nginx 5 1 1", []uint64{5, 1, 1}, []int32{0, 0, 1, 0, 2, 0, 0}},
		{"gcd 2 4", []uint64{2, 4}, []int32{1, 0, 1}},
		{"3 2 1", []uint64{3, 2, 1}, []int32{0, 1, 0, 2, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := smoothSchedule(scheduleWeights(tt.weights)); !slices.Equal(got, tt.want) {
				t.Errorf("schedule %v = %v, want %v", tt.weights, got, tt.want)
			}
		})
	}
}

func TestScheduleWeightsCapsLength(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint64
	}{
		{"huge and tiny", []uint64{MaxWeight, 1}},
		{"coprime huge", []uint64{MaxWeight, MaxWeight - 1, 3}},
		{"many", slices.Repeat([]uint64{1000, 999}, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := scheduleWeights(tt.weights)
			var sum uint64
			for i, x := range w {
				if x < 1 {
					t.Fatalf("backend %d lost its turn: weights %v", i, w)
				}
				sum += x
			}
			if limit := scheduleLimit(len(w)) + uint64(len(w)); sum > limit {
				t.Errorf("schedule length %d, want at most %d", sum, limit)
			}
		})
	}
}

func TestRoundRobinSequence(t *testing.T) {
	_, bs := newBackends(5, 1, 1)
	p := NewRoundRobin(bs, zeroRand)
	var got []int
	for range 14 {
		got = append(got, p.Pick(nil, 0))
	}
	want := []int{0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0}
	if !slices.Equal(got, want) {
		t.Errorf("picks = %v, want %v", got, want)
	}
}

func TestRoundRobinFullCycleCounts(t *testing.T) {
	tests := []struct {
		weights []int
		want    []int // per cycle
	}{
		{[]int{1, 1, 1}, []int{1, 1, 1}},
		{[]int{3, 2, 1}, []int{3, 2, 1}},
		{[]int{10, 20, 30}, []int{1, 2, 3}},
		{[]int{0, -5, 2}, []int{1, 1, 2}}, // weights below 1 count as 1
	}
	for _, tt := range tests {
		_, bs := newBackends(tt.weights...)
		p := NewRoundRobin(bs, seqRand(7))
		cycle, cycles := 0, 100
		for _, w := range tt.want {
			cycle += w
		}
		got := counts(p, len(bs), cycle*cycles, nil, 0)
		for i, w := range tt.want {
			if got[i] != w*cycles {
				t.Errorf("weights %v: backend %d picked %d times, want %d", tt.weights, i, got[i], w*cycles)
			}
		}
	}
}

func TestRoundRobinSmooth(t *testing.T) {
	_, bs := newBackends(5, 1, 1)
	p := NewRoundRobin(bs, seqRand(1))
	prev, run := -1, 0
	for range 700 {
		i := p.Pick(nil, 0)
		if i == prev {
			run++
		} else {
			prev, run = i, 1
		}
		if run > 4 { // a a b a c a a | a a b …: at most 4 a in a row
			t.Fatalf("backend %d picked %d times in a row", i, run)
		}
	}
}

func TestRoundRobinSkips(t *testing.T) {
	tests := []struct {
		name  string
		down  []int
		tried Tried
		want  []int // exact counts over 300 picks
	}{
		{"none", nil, 0, []int{100, 100, 100}},
		{"first down shares evenly", []int{0}, 0, []int{0, 150, 150}},
		{"middle tried", nil, Tried(0).Add(1), []int{150, 0, 150}},
		{"down and tried", []int{0}, Tried(0).Add(2), []int{0, 300, 0}},
		{"all down", []int{0, 1, 2}, 0, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbs, bs := newBackends(1, 1, 1)
			for _, i := range tt.down {
				tbs[i].down.Store(true)
			}
			p := NewRoundRobin(bs, zeroRand)
			if got := counts(p, 3, 300, nil, tt.tried); !slices.Equal(got, tt.want) {
				t.Errorf("counts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoundRobinRandomStart(t *testing.T) {
	_, bs := newBackends(ones(8)...)
	seen := map[int]bool{}
	for seed := range uint64(64) {
		seen[NewRoundRobin(bs, seqRand(seed)).Pick(nil, 0)] = true
	}
	if len(seen) < 4 {
		t.Errorf("first picks of 64 fresh policies hit only %d of 8 backends", len(seen))
	}
}
