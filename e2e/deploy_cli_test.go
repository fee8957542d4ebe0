package e2e

// The cutover CLI as the deploy tests run it: its standard output read
// line by line as it comes, each line with the time the test read it, so
// that a test can act on a step (send a request when a container starts)
// and order the steps afterwards.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// cliLine is a line of the CLI's output and when the test read it.
type cliLine struct {
	Text string
	At   time.Time
}

// cliRun is a running cutover CLI command whose standard output is read
// line by line as it comes.
type cliRun struct {
	t      *testing.T
	args   []string
	mu     sync.Mutex
	lines  []cliLine
	stderr bytes.Buffer
	done   chan struct{}
	code   int
	cancel context.CancelFunc
}

// cli runs the cutover binary with args, bounded by cliTimeout.
func (e *deployEnv) cli(args ...string) *cliRun {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	c := &cliRun{t: e.t, args: args, done: make(chan struct{}), cancel: cancel}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	cmd.Stderr = &c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, cliLine{Text: sc.Text(), At: time.Now()})
			c.mu.Unlock()
		}
		err := cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		if err != nil && c.code == 0 {
			c.code = -1
		}
		close(c.done)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// admin are the CLI arguments that reach the env's cutover.
func (e *deployEnv) admin() []string {
	return []string{"--admin", e.in.admin, "--admin-token", e.token}
}

// deploy runs cutover deploy of the service to tag, with extra flags.
func (e *deployEnv) deploy(s *appService, tag string, flags ...string) *cliRun {
	e.t.Helper()
	args := append([]string{"deploy", s.name, "--image", e.repo.ref(tag)}, e.admin()...)
	return e.cli(append(args, flags...)...)
}

// wait waits for the command to end and returns its exit code and its
// whole output, standard error last.
func (c *cliRun) wait() (int, string) {
	c.t.Helper()
	<-c.done
	c.cancel()
	out := c.output()
	c.t.Logf("$ cutover %s  → exit %d\n%s", strings.Join(c.args, " "), c.code, out)
	if strings.Contains(c.stderr.String(), "DATA RACE") {
		c.t.Errorf("the race detector fired in the CLI")
	}
	return c.code, out
}

func (c *cliRun) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	b.WriteString(c.stderr.String())
	return b.String()
}

// waitLine waits for an output line that has every one of parts, and
// returns it; it fails the test if the command ends first.
func (c *cliRun) waitLine(timeout time.Duration, parts ...string) cliLine {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if l, ok := c.line(parts...); ok {
			return l
		}
		select {
		case <-c.done:
			if l, ok := c.line(parts...); ok {
				return l
			}
			c.t.Fatalf("cutover %s ended (exit %d) without a line with %q:\n%s", c.args[0], c.code, parts, c.output())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no line with %q from cutover %s within %s:\n%s", parts, c.args[0], timeout, c.output())
		}
	}
}

// line returns the first line that has every one of parts.
func (c *cliRun) line(parts ...string) (cliLine, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if hasAllParts(l.Text, parts) {
			return l, true
		}
	}
	return cliLine{}, false
}

func hasAllParts(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// phase is how the CLI prints a step's phase: padded to 8 columns,
// between two spaces.
func stepPhase(p string) string { return fmt.Sprintf("  %-8s  ", p) }

// switches returns, in order, the steps of the output that switch
// traffic: "serving" when the proxy serves a new container, "drain" when
// an old one begins to drain.
func (c *cliRun) switches() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		switch {
		case strings.Contains(l.Text, stepPhase("serving")):
			out = append(out, "serving")
		case strings.Contains(l.Text, stepPhase("drain")) && strings.Contains(l.Text, "draining:"):
			out = append(out, "drain")
		}
	}
	return out
}

// deploysList runs cutover deploys SERVICE and returns its output.
func (e *deployEnv) deploysList(s *appService) string {
	e.t.Helper()
	code, out := e.cli(append([]string{"deploys", s.name}, e.admin()...)...).wait()
	if code != 0 {
		e.t.Fatalf("cutover deploys %s: exit %d", s.name, code)
	}
	return out
}
