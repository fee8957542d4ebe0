package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

func TestHelpListsEveryFlagWithItsEnvironmentVariable(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		for _, flag := range []string{"http-addr", "admin-addr", "config", "log-level", "log-format", "access-log", "shutdown-timeout"} {
			env := "CUTOVER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
			if !strings.Contains(string(out), "--"+flag) || !strings.Contains(string(out), env) {
				t.Errorf("%v: output lacks --%s or %s:\n%s", args, flag, env, out)
			}
		}
	}
}

func TestBadFlagsAreClearErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"run", "--log-format", "xml"}, "", `--log-format "xml"`},
		{[]string{"run", "--http-addr", "256.0.0.1:99999"}, "", "--http-addr"},
		{[]string{"run", "--config", "/nonexistent/cutover.yaml", "--http-addr", "127.0.0.1:0", "--admin-addr", ""}, "", "/nonexistent/cutover.yaml"},
		{[]string{"run"}, "CUTOVER_SHUTDOWN_TIMEOUT=soon", "CUTOVER_SHUTDOWN_TIMEOUT"},
		{[]string{"frobnicate"}, "", `unknown command "frobnicate"`},
	}
	for _, tc := range cases {
		cmd := exec.Command(binary, tc.args...)
		if tc.env != "" {
			cmd.Env = append(cmd.Environ(), tc.env)
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v: exit 0, want an error", tc.args)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: output %q lacks %q", tc.args, out, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cutover ") {
		t.Fatalf("version: %q %v", out, err)
	}
}
