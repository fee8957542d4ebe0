package acme

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{DataDir: "/data"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; empty: valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"full", func(c *Config) {
			c.Email, c.CA, c.RenewWindow = "ops@example.com", LetsEncryptStagingCA, 0.5
			c.RetryMin, c.RetryMax, c.OrderTimeout, c.Concurrency = time.Second, time.Minute, time.Minute, 1
		}, ""},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir is empty"},
		{"http CA", func(c *Config) { c.CA = "http://ca.example/dir" }, "not an https:// directory URL"},
		{"CA without host", func(c *Config) { c.CA = "https:///dir" }, "not an https:// directory URL"},
		{"bad CA URL", func(c *Config) { c.CA = "https://ca.example/%zz" }, "CA"},
		{"bad email", func(c *Config) { c.Email = "ops" }, "not an email address"},
		{"email with name", func(c *Config) { c.Email = "Ops <ops@example.com>" }, "not an email address"},
		{"no challenge", func(c *Config) { c.DisableHTTP01, c.DisableTLSALPN01 = true, true }, "no challenge type"},
		{"window 1", func(c *Config) { c.RenewWindow = 1 }, "RenewWindow"},
		{"negative window", func(c *Config) { c.RenewWindow = -0.1 }, "RenewWindow"},
		{"negative retry", func(c *Config) { c.RetryMin = -time.Second }, "RetryMin"},
		{"max below min", func(c *Config) { c.RetryMin, c.RetryMax = time.Hour, time.Minute }, "RetryMax"},
		{"negative timeout", func(c *Config) { c.OrderTimeout = -1 }, "OrderTimeout"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "Concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, nerr := New(c); (nerr == nil) != (err == nil) {
				t.Errorf("New() error %v, Validate() error %v", nerr, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{DataDir: "/data"}.withDefaults()
	if c.CA != LetsEncryptCA || c.RenewWindow != DefaultRenewWindow || c.RetryMin != DefaultRetryMin ||
		c.RetryMax != DefaultRetryMax || c.OrderTimeout != DefaultOrderTimeout || c.Concurrency != DefaultConcurrency {
		t.Errorf("withDefaults() = %+v", c)
	}
	// A RetryMin above the default maximum raises the maximum with it.
	if c := (Config{RetryMin: 2 * time.Hour}).withDefaults(); c.RetryMax != 2*time.Hour {
		t.Errorf("RetryMax = %v, want RetryMin", c.RetryMax)
	}
}
