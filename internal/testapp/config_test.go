package main

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	host := func() (string, error) { return "myhost", nil }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want config
	}{
		{
			name: "defaults",
			want: config{addr: ":8080", name: "myhost", version: "v1", healthy: true},
		},
		{
			name: "HOSTNAME before host name",
			env:  map[string]string{"HOSTNAME": "c0ffee"},
			want: config{addr: ":8080", name: "c0ffee", version: "v1", healthy: true},
		},
		{
			name: "environment",
			env: map[string]string{
				"TESTAPP_ADDR": ":9000", "TESTAPP_NAME": "a", "HOSTNAME": "c0ffee",
				"TESTAPP_VERSION": "v2", "TESTAPP_HEALTHY": "false",
				"TESTAPP_READY_AFTER": "3s", "TESTAPP_IGNORE_SIGTERM": "1",
				"TESTAPP_FLAP_HEALTH": "true", "TESTAPP_DATA_DIR": "/data",
				"TESTAPP_TCP_ADDR": ":9001",
			},
			want: config{addr: ":9000", name: "a", version: "v2", readyAfter: 3 * time.Second, ignoreSIGTERM: true, flapHealth: true, dataDir: "/data", tcpAddr: ":9001"},
		},
		{
			name: "flags win over environment",
			args: []string{"-addr", "127.0.0.1:1", "-name", "b", "-version", "v3", "-healthy=true", "-ready-after", "1s", "-ignore-sigterm", "-flap-health=false"},
			env:  map[string]string{"TESTAPP_NAME": "a", "TESTAPP_HEALTHY": "false", "TESTAPP_FLAP_HEALTH": "true"},
			want: config{addr: "127.0.0.1:1", name: "b", version: "v3", healthy: true, readyAfter: time.Second, ignoreSIGTERM: true},
		},
		{
			name: "data-dir flag wins over environment",
			args: []string{"-data-dir", "/b"},
			env:  map[string]string{"TESTAPP_DATA_DIR": "/a"},
			want: config{addr: ":8080", name: "myhost", version: "v1", healthy: true, dataDir: "/b"},
		},
		{
			name: "tcp-addr flag wins over environment",
			args: []string{"-tcp-addr", "127.0.0.1:9002"},
			env:  map[string]string{"TESTAPP_TCP_ADDR": ":9001"},
			want: config{addr: ":8080", name: "myhost", version: "v1", healthy: true, tcpAddr: "127.0.0.1:9002"},
		},
		{
			name: "flap-health flag",
			args: []string{"-flap-health"},
			want: config{addr: ":8080", name: "myhost", version: "v1", healthy: true, flapHealth: true},
		},
		{
			name: "bare probe uses the port of addr",
			args: []string{"-addr", ":9000", "-probe"},
			want: config{addr: ":9000", name: "myhost", version: "v1", healthy: true, probe: "http://127.0.0.1:9000/healthz"},
		},
		{
			name: "probe URL as next argument",
			args: []string{"-probe", "http://127.0.0.1:1/x"},
			want: config{addr: ":8080", name: "myhost", version: "v1", healthy: true, probe: "http://127.0.0.1:1/x"},
		},
		{
			name: "probe URL after equals",
			args: []string{"-probe=http://127.0.0.1:2/y"},
			want: config{addr: ":8080", name: "myhost", version: "v1", healthy: true, probe: "http://127.0.0.1:2/y"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := parseConfig(tt.args, getenv, host, io.Discard)
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseConfig =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseConfigRejects(t *testing.T) {
	host := func() (string, error) { return "", errors.New("no host name") }
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"stray argument", []string{"extra"}, nil},
		{"negative ready-after", []string{"-ready-after", "-1s"}, nil},
		{"bad duration", []string{"-ready-after", "soon"}, nil},
		{"bad env bool", nil, map[string]string{"TESTAPP_HEALTHY": "maybe"}},
		{"bad env duration", nil, map[string]string{"TESTAPP_READY_AFTER": "soon"}},
		{"bad env flap", nil, map[string]string{"TESTAPP_FLAP_HEALTH": "sometimes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			if _, err := parseConfig(tt.args, getenv, host, io.Discard); err == nil {
				t.Error("parseConfig: want an error")
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	none := func(string) string { return "" }
	broken := func() (string, error) { return "", errors.New("no host name") }
	if got := defaultName(none, broken); got != "testapp" {
		t.Errorf("defaultName = %q, want testapp", got)
	}
}

func TestDefaultProbeURL(t *testing.T) {
	tests := map[string]string{
		":8080":          "http://127.0.0.1:8080/healthz",
		"0.0.0.0:81":     "http://127.0.0.1:81/healthz",
		"[::]:82":        "http://127.0.0.1:82/healthz",
		"127.0.0.2:83":   "http://127.0.0.2:83/healthz",
		"[::1]:84":       "http://[::1]:84/healthz",
		"localhost:85":   "http://localhost:85/healthz",
		"no port at all": "http://127.0.0.1:8080/healthz",
	}
	for addr, want := range tests {
		if got := defaultProbeURL(addr); got != want {
			t.Errorf("defaultProbeURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
