package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 10*time.Second || o.reps != 3 || o.threads != 2 || o.connections != 64 ||
		len(o.proxies) != len(peerList()) || len(o.workloads) != len(workloadList) || o.timeout <= 0 {
		t.Errorf("defaults = %+v", o)
	}
}

func TestParseOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-proxies", "haproxy,envoy"}, `unknown "envoy"`},
		{[]string{"-workloads", ""}, "-workloads: empty"},
		{[]string{"-duration", "10ms"}, "at least 1s"},
		{[]string{"-reps", "0"}, "at least 1"},
		{[]string{"-reconfig-backends", "5,x"}, `"x" is not a number`},
		{[]string{"extra"}, "unexpected argument"},
	} {
		_, err := parseOptions(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseOptions(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestParseOptionsSubset(t *testing.T) {
	o, err := parseOptions([]string{"-proxies", "cutover, haproxy,cutover", "-workloads", "tcpecho", "-duration", "2s", "-reps", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.proxies, ",") != "cutover,haproxy" || strings.Join(o.workloads, ",") != "tcpecho" {
		t.Errorf("proxies %v, workloads %v", o.proxies, o.workloads)
	}
}
