package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // part of the error; "" means valid
	}{
		{Config{}, ""},
		{Config{Attempts: 1, DialTimeout: time.Second}, ""},
		{Config{Attempts: 10}, ""},
		{Config{Attempts: 11}, "attempts"},
		{Config{Attempts: -1}, "attempts"},
		{Config{DialTimeout: -1}, "dial timeout"},
		{Config{ResponseHeaderTimeout: -1}, "response header timeout"},
		{Config{IdleConnTimeout: -1}, "idle connection timeout"},
		{Config{MaxIdleConnsPerHost: -1}, "max idle connections"},
		{Config{DrainGrace: -1}, "drain grace"},
		{Config{CloseWait: -1}, "websocket close wait"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v, want an error about %s", tt.cfg, err, tt.want)
		}
		if _, nerr := New(tt.cfg); (nerr == nil) != (err == nil) {
			t.Errorf("%+v: New returned %v, Validate %v", tt.cfg, nerr, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.DialTimeout != DefaultDialTimeout || c.ResponseHeaderTimeout != DefaultResponseHeaderTimeout ||
		c.IdleConnTimeout != DefaultIdleConnTimeout || c.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost ||
		c.Attempts != DefaultAttempts || c.DrainGrace != DefaultDrainGrace || c.CloseWait != DefaultCloseWait {
		t.Errorf("defaults: %+v", c)
	}
	if c := (Config{Attempts: 1}).withDefaults(); c.Attempts != 1 {
		t.Errorf("Attempts 1 became %d", c.Attempts)
	}
}
