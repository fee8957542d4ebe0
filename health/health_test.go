package health

import (
	"strings"
	"testing"
	"time"
)

func TestConfigWithDefaults(t *testing.T) {
	want := Config{Mode: HTTP, Path: "/up", Interval: DefaultInterval, Timeout: DefaultTimeout,
		Rise: DefaultRise, Fall: DefaultFall, StatusMin: DefaultStatusMin, StatusMax: DefaultStatusMax}
	if got := (Config{Mode: HTTP, Path: "/up"}).WithDefaults(); got != want {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
	if got := (Config{Interval: -time.Second, Rise: -1}).WithDefaults(); got.Interval != DefaultInterval || got.Rise != DefaultRise {
		t.Errorf("negative values kept: %+v", got)
	}
	set := Config{Mode: TCP, Interval: time.Second, Timeout: time.Millisecond, Rise: 1, Fall: 1, StatusMin: 200, StatusMax: 200}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults() changed set fields: %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // part of the error; empty means valid
	}{
		{Config{}, ""},
		{Config{Mode: HTTP, Path: "/healthz?x=1", StatusMin: 200, StatusMax: 200}, ""},
		{Config{Mode: 7}, "mode 7 unknown"},
		{Config{Path: "healthz"}, "path \"healthz\" must start with /"},
		{Config{Interval: -1}, "interval"},
		{Config{Timeout: -1}, "timeout"},
		{Config{Rise: -1}, "rise -1"},
		{Config{Fall: -2}, "fall -2"},
		{Config{StatusMin: 99}, "status minimum 99"},
		{Config{StatusMax: 600}, "status maximum 600"},
		{Config{StatusMin: 400}, "status range 400-399 is empty"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v.Validate() = %v, want nil", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v.Validate() = %v, want an error with %q", tt.cfg, err, tt.want)
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Off: "off", HTTP: "http", TCP: "tcp", 9: "mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", m, got, want)
		}
	}
}
