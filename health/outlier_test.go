package health

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// feed applies seq to o at t0: F Failure, T Trip, S Success, E Ejected
// with the last signalled duration, D Declined. It returns one letter per
// step: x when a call signalled an ejection, . otherwise.
func feed(o *Outlier, seq string) string {
	out := make([]byte, 0, len(seq))
	var last time.Duration
	for _, c := range []byte(seq) {
		var eject bool
		switch c {
		case 'F':
			eject, last = o.Failure(t0)
		case 'T':
			eject, last = o.Trip(t0)
		case 'S':
			o.Success()
		case 'E':
			o.Ejected(t0, last)
		case 'D':
			o.Declined()
		}
		if eject {
			out = append(out, 'x')
		} else {
			out = append(out, '.')
		}
	}
	return string(out)
}

func TestOutlierThreshold(t *testing.T) {
	tests := []struct {
		name        string
		consecutive int
		seq, want   string
		failures    int
	}{
		{"default is 5", 0, "FFFFF", "....x", 5},
		{"signal once until answered", 0, "FFFFFFFF", "....x...", 8},
		{"success resets", 0, "FFFFSFFFFF", ".........x", 5},
		{"success at zero", 0, "SSF", "...", 1},
		{"ejected resets", 3, "FFFEFFF", "..x...x", 3},
		{"declined resets", 3, "FFFDFFF", "..x...x", 3},
		{"declined then success", 3, "FFFDFFSFFF", "..x......x", 3},
		{"threshold 1", 1, "FEF", "x.x", 1},
		{"trip ejects at once", 0, "T", "x", 5},
		{"trip after failures", 0, "FFT", "..x", 5},
		{"trip while signal pending", 3, "FFFT", "..x.", 3},
		{"failure after trip", 0, "TF", "x.", 6},
		{"trip again after ejected", 0, "TETF", "x.x.", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Outlier
			if tt.consecutive != 0 {
				o.Configure(OutlierConfig{Consecutive: tt.consecutive})
			}
			if got := feed(&o, tt.seq); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.seq, got, tt.want)
			}
			if got := o.Failures(); got != tt.failures {
				t.Errorf("Failures() = %d, want %d", got, tt.failures)
			}
		})
	}
}

// TestOutlierSignalOnce checks that of many concurrent failures exactly
// one gets the signal while nobody answers it.
func TestOutlierSignalOnce(t *testing.T) {
	var o Outlier
	var signals atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 1000 {
				var eject bool
				if i%4 == 0 {
					eject, _ = o.Trip(t0)
				} else {
					eject, _ = o.Failure(t0)
				}
				if eject {
					signals.Add(1)
				}
				o.Failures()
			}
		})
	}
	wg.Wait()
	if n := signals.Load(); n != 1 {
		t.Errorf("%d ejection signals, want exactly 1", n)
	}
}

// TestOutlierSignalAnswered checks with concurrent callers that answer
// every signal that no two signals are outstanding at once.
func TestOutlierSignalAnswered(t *testing.T) {
	var o Outlier
	o.Configure(OutlierConfig{Consecutive: 3})
	var pending atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 2000 {
				eject, d := o.Failure(t0)
				if !eject {
					continue
				}
				if pending.Add(1) != 1 {
					t.Error("two ejection signals outstanding at once")
				}
				pending.Add(-1)
				if (i+j)%2 == 0 {
					o.Ejected(t0, d)
				} else {
					o.Declined()
				}
			}
		})
	}
	wg.Wait()
}

func TestOutlierDoubling(t *testing.T) {
	tests := []struct {
		name string
		cfg  OutlierConfig
		want []time.Duration
	}{
		{"defaults", OutlierConfig{}, []time.Duration{30, 60, 120, 240, 300, 300, 300}},
		{"custom", OutlierConfig{BaseEjection: 10 * time.Second, MaxEjection: 50 * time.Second}, []time.Duration{10, 20, 40, 50, 50}},
		{"base equals max", OutlierConfig{BaseEjection: 10 * time.Second, MaxEjection: 10 * time.Second}, []time.Duration{10, 10}},
		{"base above max", OutlierConfig{BaseEjection: 20 * time.Second, MaxEjection: 10 * time.Second}, []time.Duration{10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Outlier
			o.Configure(tt.cfg)
			now := t0
			for i, w := range tt.want {
				w *= time.Second
				eject, d := o.Trip(now)
				if !eject || d != w {
					t.Fatalf("ejection %d: Trip() = %v, %v, want true, %v", i+1, eject, d, w)
				}
				o.Ejected(now, d)
				if n := o.Ejections(now); n != i+1 {
					t.Fatalf("after ejection %d: Ejections() = %d", i+1, n)
				}
				// Back after the ejection, and failing again a while later,
				// but sooner than MaxEjection: the streak goes on.
				now = now.Add(d + o.Config().MaxEjection - time.Nanosecond)
			}
		})
	}
}

// EjectionFrom doubles from the shorter start as the base ejection
// doubles, within the same streak and the same cap.
func TestOutlierEjectionFrom(t *testing.T) {
	var o Outlier
	now := t0
	for i, w := range []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300} {
		w *= time.Second
		if d := o.EjectionFrom(now, time.Second); d != w {
			t.Fatalf("ejection %d: EjectionFrom(1s) = %v, want %v", i+1, d, w)
		}
		o.Ejected(now, w)
		now = now.Add(w + o.Config().MaxEjection - time.Nanosecond)
	}
	if d := o.EjectionFrom(now, time.Hour); d != DefaultMaxEjection {
		t.Errorf("EjectionFrom a start above the base = %v, want the base's doubling (%v)", d, DefaultMaxEjection)
	}
}

func TestOutlierStreakReset(t *testing.T) {
	var o Outlier // defaults: 30s base, 300s max
	o.Ejected(t0, 30*time.Second)
	o.Ejected(t0.Add(100*time.Second), 60*time.Second) // ends at t0+160s
	end := t0.Add(160 * time.Second)
	tests := []struct {
		at        time.Time
		want      time.Duration
		ejections int
	}{
		{end, 120 * time.Second, 2},
		{end.Add(300*time.Second - time.Nanosecond), 120 * time.Second, 2},
		{end.Add(300 * time.Second), 30 * time.Second, 0},
		{end.Add(time.Hour), 30 * time.Second, 0},
	}
	for _, tt := range tests {
		if got := o.duration(tt.at); got != tt.want {
			t.Errorf("duration at end+%s = %s, want %s", tt.at.Sub(end), got, tt.want)
		}
		if got := o.Ejections(tt.at); got != tt.ejections {
			t.Errorf("Ejections at end+%s = %d, want %d", tt.at.Sub(end), got, tt.ejections)
		}
	}
	// An ejection after the reset starts a new streak.
	at := end.Add(300 * time.Second)
	_, d := o.Trip(at)
	o.Ejected(at, d)
	if n := o.Ejections(at); n != 1 {
		t.Errorf("Ejections() after a new streak = %d, want 1", n)
	}
	if _, d := o.Trip(at); d != 60*time.Second {
		t.Errorf("second ejection of the new streak = %s, want 60s", d)
	}
}

func TestOutlierDeclinedKeepsStreak(t *testing.T) {
	var o Outlier
	o.Configure(OutlierConfig{Consecutive: 2})
	_, d := o.Trip(t0)
	o.Ejected(t0, d)
	now := t0.Add(d)
	if got := feed(&o, "FFD"); got != ".x." {
		t.Fatalf("FFD = %q", got)
	}
	if _, d := o.Trip(now); d != 60*time.Second {
		t.Errorf("after a decline the next ejection lasts %s, want 60s", d)
	}
	if n := o.Ejections(now); n != 1 {
		t.Errorf("Ejections() = %d, want 1", n)
	}
}

func TestOutlierConfigure(t *testing.T) {
	var o Outlier
	if got := o.Config(); got != (OutlierConfig{5, 30 * time.Second, 300 * time.Second}) {
		t.Errorf("zero Config() = %+v", got)
	}
	feed(&o, "FFF")
	o.Configure(OutlierConfig{}) // same as the defaults: nothing changes
	if got := o.Failures(); got != 3 {
		t.Errorf("Failures() after an unchanged Configure = %d, want 3", got)
	}
	o.Configure(OutlierConfig{Consecutive: 2})
	if got := o.Failures(); got != 0 {
		t.Errorf("Failures() after a new threshold = %d, want 0", got)
	}
	if got := feed(&o, "FF"); got != ".x" {
		t.Errorf("FF with threshold 2 = %q", got)
	}
}

func TestOutlierConfigValidate(t *testing.T) {
	tests := []struct {
		cfg OutlierConfig
		ok  bool
	}{
		{OutlierConfig{}, true},
		{OutlierConfig{Consecutive: 1, BaseEjection: time.Second, MaxEjection: time.Second}, true},
		{OutlierConfig{Consecutive: -1}, false},
		{OutlierConfig{BaseEjection: -time.Second}, false},
		{OutlierConfig{MaxEjection: -time.Second}, false},
		{OutlierConfig{BaseEjection: time.Hour}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tt.cfg, err, tt.ok)
		}
	}
}

func TestOutlierNoAllocs(t *testing.T) {
	var o Outlier
	n := testing.AllocsPerRun(1000, func() {
		if eject, d := o.Failure(t0); eject {
			o.Ejected(t0, d)
		}
		o.Success()
		if eject, _ := o.Trip(t0); eject {
			o.Declined()
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func BenchmarkOutlierSuccess(b *testing.B) {
	var o Outlier
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Success()
		}
	})
}

func BenchmarkOutlierFailure(b *testing.B) {
	var o Outlier
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if eject, d := o.Failure(now); eject {
				o.Ejected(now, d)
			}
		}
	})
}
