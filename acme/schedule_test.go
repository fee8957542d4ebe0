package acme

import (
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		life   time.Duration
		window float64
		want   time.Duration // after start
	}{
		{90 * 24 * time.Hour, 1.0 / 3, 60 * 24 * time.Hour},
		{6 * 24 * time.Hour, 0.5, 3 * 24 * time.Hour},
		{time.Hour, 0.999, 3600 * time.Millisecond},
	}
	for _, tt := range tests {
		got := renewAt(start, start.Add(tt.life), tt.window)
		if d := got.Sub(start); d.Round(time.Millisecond) != tt.want {
			t.Errorf("renewAt(life %v, window %v) = start+%v, want start+%v", tt.life, tt.window, d, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	lo, hi := 5*time.Minute, time.Hour
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := retryDelay(i+1, lo, hi); got != w {
			t.Errorf("retryDelay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := retryDelay(1000, lo, hi); got != hi {
		t.Errorf("retryDelay(1000) = %v, want %v", got, hi)
	}
}
