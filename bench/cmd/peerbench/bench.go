package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cutoverModule is the module path of the repository peerbench measures.
const cutoverModule = "github.com/cutoverproxy/cutover"

// bench is one peerbench run: its options, temporary directory, child
// processes and what it found out about the machine.
type bench struct {
	opt     options
	dir     string
	sup     *supervisor
	self    string // peerbench's own executable: helpers run it
	cutover string // the cutover binary built for the run
	// cutoverSource says what it was built from, for the report.
	cutoverSource string
	bins          map[string]string // peers' programs by name, and wrk
	// httpBackends and tcpBackends are the two backend processes' servers.
	httpBackends, tcpBackends []string
	backendProcs              []*process
	peers                     []peer // those selected and available
	// noTCP holds, by peer name, why a peer whose TCP support is found by
	// trying does not serve TCP.
	noTCP   map[string]string
	notes   []string // for the report
	machine machineInfo
	tls     tlsFiles // the HTTP/2 workload's certificate
	runs    int      // directories made under dir
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peerbench: "+format+"\n", args...)
}

func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, s)
	b.logf("%s", s)
}

// backends returns the backend addresses a workload's proxies forward to.
func (b *bench) backends(w workload) []string {
	if w.tcp {
		return b.tcpBackends
	}
	return b.httpBackends
}

// runDir makes a fresh directory for one proxy start.
func (b *bench) runDir(name string) (string, error) {
	b.runs++
	dir := filepath.Join(b.dir, fmt.Sprintf("%03d-%s", b.runs, name))
	return dir, os.Mkdir(dir, 0o755)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

func runBench(ctx context.Context, o options) (err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	b := &bench{opt: o, sup: newSupervisor(), bins: map[string]string{}, noTCP: map[string]string{}}
	if b.dir, err = os.MkdirTemp("", "peerbench-"); err != nil {
		return err
	}
	defer func() {
		if o.keep {
			b.logf("kept %s", b.dir)
			return
		}
		if rerr := os.RemoveAll(b.dir); rerr != nil {
			b.logf("remove %s: %v", b.dir, rerr)
		}
	}()
	defer b.sup.stopAll()
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if err := b.install(ctx); err != nil {
		return err
	}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	res := b.runWorkloads(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("stopped: %w", context.Cause(ctx))
	}
	var rc []reconfigResult
	if o.reconfig > 0 && has(o.proxies, "cutover") {
		rc = b.reconfigure(ctx)
	}
	var prof *profile
	if o.profile && has(o.proxies, "cutover") {
		prof = b.profileCutover(ctx)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped: %w", context.Cause(ctx))
	}
	report := b.report(res, rc, prof)
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		b.logf("report written to %s", o.out)
	}
	return nil
}

// prepare finds the peers' programs, builds cutover, and starts the two
// backends.
func (b *bench) prepare(ctx context.Context) error {
	for _, p := range peerList() {
		if !has(b.opt.proxies, p.name) {
			continue
		}
		if p.bin != "" {
			path := lookPath(p.bin)
			if path == "" {
				b.note("%s is not installed: its rows are skipped", p.bin)
				continue
			}
			b.bins[p.bin] = path
		}
		if p.name == "traefik" {
			bin, err := b.findTraefik(ctx)
			if err != nil {
				b.note("Traefik is not built, its rows are skipped: %v", err)
				continue
			}
			b.bins["traefik"] = bin
		}
		if p.name == "cutover" {
			if err := b.buildCutover(ctx); err != nil {
				b.note("cutover did not build, its rows are skipped: %v", err)
				continue
			}
		}
		b.peers = append(b.peers, p)
	}
	if b.bins["wrk"] = lookPath("wrk"); b.bins["wrk"] == "" {
		b.note("wrk is not installed: the HTTP/1.1 workloads are skipped")
	}
	if slices.ContainsFunc(b.opt.workloads, func(n string) bool { return workloadByName(n).h2 }) {
		if b.bins["h2load"] = lookPath("h2load"); b.bins["h2load"] == "" {
			b.note("h2load (nghttp2-client) is not installed: the HTTP/2 workload is skipped")
		}
		dir := filepath.Join(b.dir, "tls")
		var err error
		if b.tls, err = makeTLSFiles(dir); err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
	}
	if _, err := os.Stat(nginxStreamModule); err != nil && b.bins["nginx"] != "" {
		b.noTCP["nginx"] = "nginx's stream module (libnginx-mod-stream) is not installed"
	}
	b.machine = readMachine(ctx, b)
	return b.startBackends(ctx)
}

// buildCutover builds ./cmd/cutover of the module in the working
// directory, or of the revision -cutover-rev names.
func (b *bench) buildCutover(ctx context.Context) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	repo := root
	if rev := b.opt.cutoverRev; rev != "" {
		src := filepath.Join(b.dir, "cutover-src")
		if err := os.Mkdir(src, 0o755); err != nil {
			return err
		}
		b.logf("+ git -C %s archive %s | tar -x -C %s", root, shellJoin([]string{rev}), src)
		if _, err := b.sup.run(ctx, time.Minute, "git archive", filepath.Join(b.dir, "archive.log"),
			"bash", "-c", `set -o pipefail; git -C "$1" archive "$2" | tar -x -C "$3"`, "-", root, rev, src); err != nil {
			return err
		}
		root = src
	}
	out := filepath.Join(b.dir, "cutover")
	argv := []string{"go", "build", "-C", root, "-o", out, "./cmd/cutover"}
	b.logf("+ %s", shellJoin(argv))
	if _, err := b.sup.run(ctx, 5*time.Minute, "go build", filepath.Join(b.dir, "build.log"), argv...); err != nil {
		return err
	}
	b.cutover = out
	b.cutoverSource = describeSource(ctx, repo, b.opt.cutoverRev)
	return nil
}

// describeSource says which code of the repository at root the cutover
// binary was built from.
func describeSource(ctx context.Context, root, rev string) string {
	git := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if rev != "" {
		return fmt.Sprintf("git revision %s (%s)", rev, git("rev-parse", "--short", rev))
	}
	head := git("rev-parse", "--short", "HEAD")
	if head == "" {
		return "the working tree"
	}
	if git("status", "--porcelain", "--untracked-files=no") != "" {
		return "the working tree at " + head + " with uncommitted changes"
	}
	return "the working tree at " + head
}

// moduleRoot returns the directory of cutover's go.mod, as the go command
// finds it from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	b, err := os.ReadFile(gomod)
	if err != nil || !strings.HasPrefix(string(b), "module "+cutoverModule+"\n") {
		return "", fmt.Errorf("run peerbench inside the cutover repository (module %s); the working directory's module is %q", cutoverModule, gomod)
	}
	return filepath.Dir(gomod), nil
}

// startBackends starts two backend processes, each with an HTTP and a TCP
// server on 127.0.0.1.
func (b *bench) startBackends(ctx context.Context) error {
	for i := range 2 {
		h, err := freeAddr()
		if err != nil {
			return err
		}
		t, err := freeAddr()
		if err != nil {
			return err
		}
		p, err := b.sup.start(fmt.Sprintf("backend %d", i+1), filepath.Join(b.dir, fmt.Sprintf("backend%d.log", i+1)), nil,
			b.self, "backend", "-http", h, "-tcp", t)
		if err != nil {
			return err
		}
		b.backendProcs = append(b.backendProcs, p)
		if err := waitHTTP(ctx, h, p, 10*time.Second); err != nil {
			return fmt.Errorf("backend %d: %w", i+1, err)
		}
		if err := waitTCP(ctx, t, p, 10*time.Second); err != nil {
			return fmt.Errorf("backend %d: %w", i+1, err)
		}
		b.httpBackends = append(b.httpBackends, h)
		b.tcpBackends = append(b.tcpBackends, t)
	}
	b.logf("backends: HTTP %s, TCP %s", strings.Join(b.httpBackends, " "), strings.Join(b.tcpBackends, " "))
	return nil
}
