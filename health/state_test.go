package health

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// run applies seq to s: P a pass, F a failure, S SetUp. It returns one
// letter per step: u or d for up or down, upper case when Observe
// reported a change.
func run(s *State, seq string, rise, fall int) string {
	out := make([]byte, 0, len(seq))
	for _, c := range []byte(seq) {
		if c == 'S' {
			s.SetUp()
			out = append(out, 'u')
			continue
		}
		up, changed := s.Observe(c == 'P', rise, fall)
		if up != s.Up() {
			return "Observe and Up disagree"
		}
		l := byte('d')
		if up {
			l = 'u'
		}
		if changed {
			l -= 'a' - 'A'
		}
		out = append(out, l)
	}
	return string(out)
}

func TestStateObserve(t *testing.T) {
	tests := []struct {
		name             string
		rise, fall       int
		seq, want        string
		passes, failures int
	}{
		{"new is down", 2, 3, "", "", 0, 0},
		{"up after rise", 2, 3, "PP", "dU", 2, 0},
		{"passes keep counting", 2, 3, "PPPP", "dUuu", 4, 0},
		{"rise 1", 1, 3, "P", "U", 1, 0},
		{"down after fall", 2, 3, "PPFFF", "dUuuD", 0, 3},
		{"failures keep counting", 2, 3, "PPFFFFF", "dUuuDdd", 0, 5},
		{"fall interrupted", 2, 3, "PPFFPFF", "dUuuuuu", 0, 2},
		{"rise interrupted", 3, 3, "PPFPPP", "dddddU", 3, 0},
		{"failures while down", 2, 3, "FFFF", "dddd", 0, 4},
		{"flapping never comes up", 2, 3, "PFPFPFPFPF", "dddddddddd", 0, 1},
		{"flapping never goes down", 2, 3, "PPFPFPFPFPF", "dUuuuuuuuuu", 0, 1},
		{"flapping FFP never goes down", 2, 3, "PPFFPFFPFFP", "dUuuuuuuuuu", 1, 0},
		{"down and up again", 2, 2, "PPFFPP", "dUuDdU", 2, 0},
		{"zero rise and fall count as 1", 0, 0, "PFP", "UDU", 1, 0},
		{"SetUp on new", 2, 3, "S", "u", 0, 0},
		{"SetUp after one pass keeps it", 2, 3, "PS", "du", 1, 0},
		{"SetUp clears failures", 2, 3, "FFSFF", "dduuu", 0, 2},
		{"SetUp then fall", 2, 3, "PSFFF", "duuuD", 0, 3},
		{"SetUp when up", 2, 3, "PPFS", "dUuu", 0, 0},
		{"pass after SetUp", 2, 3, "PSP", "duu", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s State
			if got := run(&s, tt.seq, tt.rise, tt.fall); got != tt.want {
				t.Errorf("%s with rise %d fall %d = %q, want %q", tt.seq, tt.rise, tt.fall, got, tt.want)
			}
			if p, f := s.Counts(); p != tt.passes || f != tt.failures {
				t.Errorf("Counts() = %d, %d, want %d, %d", p, f, tt.passes, tt.failures)
			}
		})
	}
}

func TestStateCountsSaturate(t *testing.T) {
	var s State
	s.word.Store(packState(true, countMask, 0))
	s.Observe(true, 2, 3)
	if p, _ := s.Counts(); p != countMask {
		t.Errorf("passes = %d, want %d", p, countMask)
	}
	s.word.Store(packState(false, 0, countMask))
	s.Observe(false, 2, 3)
	if _, f := s.Counts(); f != countMask || s.Up() {
		t.Errorf("failures = %d up %v, want %d down", f, s.Up(), countMask)
	}
}

func TestStateLast(t *testing.T) {
	var s State
	if _, ok := s.Last(); ok {
		t.Fatal("Last() of a new State reports a result")
	}
	r := Result{At: time.Unix(10, 0), Err: errors.New("status 503 (want 200-399)"), Duration: time.Millisecond}
	s.record(r)
	got, ok := s.Last()
	if !ok || got != r {
		t.Errorf("Last() = %+v, %v, want %+v, true", got, ok, r)
	}
}

// TestStateConcurrentReads checks, with -race, that readers never see
// both counters non-zero.
func TestStateConcurrentReads(t *testing.T) {
	const rise, fall = 2, 3
	var s State
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.Up()
				p, f := s.Counts()
				if p > 0 && f > 0 {
					t.Errorf("Counts() = %d, %d: both non-zero", p, f)
					return
				}
				_, _ = s.Last()
			}
		})
	}
	for i := range 10000 {
		ok := i%7 < 4
		s.record(Result{OK: ok})
		s.Observe(ok, rise, fall)
		if i%100 == 0 {
			s.SetUp()
		}
	}
	close(stop)
	wg.Wait()
}
