package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor starts every child process of a bench run and ends them all:
// each child leads its own process group (so nginx's workers go with their
// master), gets SIGKILL when peerbench dies (Pdeathsig), and stopAll kills
// whatever is left, on success, failure or Ctrl-C alike.
type supervisor struct {
	mu    sync.Mutex
	procs map[*process]struct{}
}

// process is one started child.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the leader has exited
	err     error         // set before done is closed
}

func newSupervisor() *supervisor {
	return &supervisor{procs: map[*process]struct{}{}}
}

// start runs argv with its output appended to logPath ("" discards it).
// env entries are added to peerbench's own environment.
func (s *supervisor) start(name, logPath string, env []string, argv ...string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		defer func() { _ = f.Close() }() // the child has its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	s.mu.Lock()
	s.procs[p] = struct{}{}
	s.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// run starts argv with its output in logPath, waits for it for at most
// limit, and returns it once it has exited (its ProcessState is set).
func (s *supervisor) run(ctx context.Context, limit time.Duration, name, logPath string, argv ...string) (*process, error) {
	p, err := s.start(name, logPath, nil, argv...)
	if err != nil {
		return nil, err
	}
	defer s.stop(p, 0)
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return p, fmt.Errorf("%s: %w%s", name, p.err, p.tail())
		}
		return p, nil
	case <-t.C:
		return p, fmt.Errorf("%s: still running after %s, killed", name, limit)
	case <-ctx.Done():
		return p, ctx.Err()
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's log, for error messages.
func (p *process) tail() string {
	if p.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return "\n  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// stop sends SIGTERM to the process group, then SIGKILL after grace (at
// once when grace is zero), and waits for the leader.
func (s *supervisor) stop(p *process, grace time.Duration) {
	pg := -p.pid()
	if grace > 0 && !p.exited() {
		_ = syscall.Kill(pg, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
		}
		t.Stop()
	}
	// Members of the group may outlive their leader (nginx workers).
	if err := syscall.Kill(pg, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(os.Stderr, "peerbench: kill %s (pgid %d): %v\n", p.name, -pg, err)
	}
	<-p.done
	s.mu.Lock()
	delete(s.procs, p)
	s.mu.Unlock()
}

// stopAll kills every process still running.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	ps := make([]*process, 0, len(s.procs))
	for p := range s.procs {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		s.stop(p, 0)
	}
}
