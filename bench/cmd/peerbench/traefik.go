package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Traefik is not packaged by Debian, and `go install` of its command fails
// here: its go.mod replaces modules (which go install refuses) and some of
// the modules it needs are refused by the module proxy. buildTraefik builds
// it from its module instead, with three changes that leave its proxying
// as released:
//
//   - The module github.com/traefik/traefik/dynamic/ext, which go.mod
//     replaces with a directory of the repository that the module's zip
//     leaves out, is written as Traefik's open-source build has it: a few
//     empty extension types.
//   - github.com/abbot/go-http-auth is taken at its release v0.4.0 instead
//     of Traefik's fork, which the proxy refuses; two lines of the basic and
//     digest auth middlewares that need the fork are changed (basic auth
//     then rejects every password, digest auth answers a stale nonce like a
//     wrong one). The benchmark configures no middleware.
//   - The DNS providers of the ACME library lego whose SDK modules the
//     proxy refuses are taken out of lego's provider list (found by
//     building: see dropDNSProviders). The benchmark uses no ACME.
//
// The binary is kept in the user's cache directory, so only the first run
// builds it (about four minutes on two cores, over a gigabyte of modules).
// Its name carries the version and traefikRecipe, which changes whenever
// the changes above do, so that an older build is not taken for this one.
const (
	traefikModule   = "github.com/traefik/traefik/v3"
	traefikVersion  = "v3.7.13"
	legoModule      = "github.com/go-acme/lego/v5"
	httpAuthModule  = "github.com/abbot/go-http-auth"
	httpAuthRelease = "v0.4.0"
	traefikBuild    = 20 * time.Minute // bound on the whole build
	traefikRecipe   = "r1"
)

// traefikExt is the stand-in for Traefik's extension module.
const traefikExt = `// Package ext holds the extension points of Traefik's dynamic
// configuration; the open-source build has none.
package ext

// HTTP extends dynamic.HTTPConfiguration.
type HTTP struct{}

// Router extends dynamic.Router.
type Router struct{}

// RouterIng extends the ingress provider's router annotations.
type RouterIng struct{}

// ToRouter converts RouterIng to a Router.
func (RouterIng) ToRouter() Router { return Router{} }
`

// traefikPatches are the source changes for go-http-auth v0.4.0: file,
// text, replacement. A text that is not found fails the build with a
// message, rather than build something else.
var traefikPatches = [][3]string{
	{"pkg/middlewares/auth/basic_auth.go", "checkSecret:       goauth.CheckSecret,", "checkSecret:       func(string, string) bool { return false },"},
	{"pkg/middlewares/auth/digest_auth.go", "d.auth.RequireAuthStale(rw, req)", "d.auth.RequireAuth(rw, req)"},
}

// traefikCached is where the built binary is kept.
func traefikCached() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "cutover-peerbench", "traefik-"+traefikVersion+"-"+traefikRecipe), nil
}

// findTraefik returns the cached Traefik binary, building it first when it
// is not there and installing is allowed.
func (b *bench) findTraefik(ctx context.Context) (string, error) {
	bin, err := traefikCached()
	if err != nil {
		return "", err
	}
	if isFile(bin) {
		err := checkTraefik(ctx, bin)
		if err == nil {
			return bin, nil
		}
		if !b.opt.install {
			return "", err
		}
		b.logf("%v: building it again", err)
	}
	if !b.opt.install {
		return "", fmt.Errorf("%s is not built and -install=false", bin)
	}
	bctx, cancel := context.WithTimeout(ctx, traefikBuild)
	defer cancel()
	b.logf("building Traefik %s from its module into %s (once; about four minutes)", traefikVersion, bin)
	work := filepath.Join(b.dir, "traefik-build")
	defer func() { _ = os.RemoveAll(work) }()
	built, err := buildTraefik(bctx, work, b.logf)
	if err != nil {
		if bctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("the build's limit of %s ran out: %w", traefikBuild, err)
		}
		return "", err
	}
	if err := installFile(built, bin); err != nil {
		return "", err
	}
	return bin, checkTraefik(ctx, bin)
}

// checkTraefik runs `traefik version` and checks the version it prints.
func checkTraefik(ctx context.Context, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), traefikVersion) {
		return fmt.Errorf("%s version: want %s, got %q (%v)", bin, traefikVersion, lastLines(string(out), 3), err)
	}
	return nil
}

// installFile copies a program to path through a temporary file in
// path's directory, synced, then renamed over path: a run that stops
// halfway, or another building at once, never leaves half a file there.
func installFile(from, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after the rename, nothing
	_, err = io.Copy(tmp, src)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// buildTraefik builds Traefik's command under work and returns the binary.
func buildTraefik(ctx context.Context, work string, logf func(string, ...any)) (string, error) {
	src := filepath.Join(work, "traefik")
	lego := filepath.Join(work, "lego")
	if err := copyModule(ctx, traefikModule+"@"+traefikVersion, src); err != nil {
		return "", err
	}
	ext := filepath.Join(src, "pkg", "config", "dynamic", "ext")
	if err := os.MkdirAll(ext, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(ext, "go.mod"), []byte("module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(ext, "ext.go"), []byte(traefikExt), 0o644); err != nil {
		return "", err
	}
	for _, p := range traefikPatches {
		if err := replaceIn(filepath.Join(src, p[0]), p[1], p[2]); err != nil {
			return "", err
		}
	}
	legoVersion, err := requiredVersion(ctx, src, legoModule)
	if err != nil {
		return "", err
	}
	if err := copyModule(ctx, legoModule+"@"+legoVersion, lego); err != nil {
		return "", err
	}
	if _, err := goCmd(ctx, src, "mod", "edit", "-dropreplace="+httpAuthModule,
		"-require="+httpAuthModule+"@"+httpAuthRelease, "-replace="+legoModule+"="+lego); err != nil {
		return "", err
	}
	bin := filepath.Join(work, "traefik-bin")
	providers := filepath.Join(lego, "providers", "dns", "zz_gen_dns_providers.go")
	var dropped []string
	for attempt := 1; ; attempt++ {
		logf("+ go build -C %s -o %s ./cmd/traefik (attempt %d)", src, bin, attempt)
		out, err := goCmd(ctx, src, "build", "-mod=mod", "-trimpath",
			"-ldflags", "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version="+traefikVersion,
			"-o", bin, "./cmd/traefik")
		if err == nil {
			if len(dropped) > 0 {
				logf("Traefik built without the lego DNS providers %s (modules refused by the proxy)", strings.Join(dropped, ", "))
			}
			return bin, nil
		}
		refused := refusedProviders(out)
		refused = slices.DeleteFunc(refused, func(p string) bool { return slices.Contains(dropped, p) })
		if len(refused) == 0 || attempt == 3 || ctx.Err() != nil {
			return "", fmt.Errorf("building Traefik: %w", err)
		}
		if derr := dropDNSProviders(providers, refused); derr != nil {
			return "", fmt.Errorf("%w, after %w", derr, err)
		}
		dropped = append(dropped, refused...)
	}
}

// goCmd runs the go command in dir (without cgo) and returns its combined
// output; an error ends with the output's last lines. The command leads
// its own process group, which is killed whole when ctx ends, so that no
// compiler or linker it started goes on.
func goCmd(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, lastLines(string(out), 20))
	}
	return string(out), nil
}

// copyModule downloads a module (module@version) and copies its files to
// dst, writable.
func copyModule(ctx context.Context, mod, dst string) error {
	out, err := goCmd(ctx, os.TempDir(), "mod", "download", "-json", mod)
	if err != nil {
		return err
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return fmt.Errorf("go mod download %s: %w", mod, err)
	}
	if info.Dir == "" {
		return fmt.Errorf("go mod download %s: %s", mod, info.Error)
	}
	return os.CopyFS(dst, os.DirFS(info.Dir))
}

// requiredVersion returns the version of module that the go.mod in dir
// requires.
func requiredVersion(ctx context.Context, dir, module string) (string, error) {
	out, err := goCmd(ctx, dir, "mod", "edit", "-json")
	if err != nil {
		return "", err
	}
	var mod struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal([]byte(out), &mod); err != nil {
		return "", err
	}
	for _, r := range mod.Require {
		if r.Path == module {
			return r.Version, nil
		}
	}
	return "", fmt.Errorf("%s/go.mod does not require %s", dir, module)
}

func replaceIn(path, old, repl string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return fmt.Errorf("%s: %q not found: this Traefik version needs other changes", path, old)
	}
	return os.WriteFile(path, []byte(strings.Replace(string(b), old, repl, 1)), 0o644)
}

// refusedLine matches the go command's message for a module the proxy
// refused, needed by a lego DNS provider package (whose directory the
// message names as it was given, here relative: ../lego/providers/dns/…).
var refusedLine = regexp.MustCompile(`/providers/dns/([a-z0-9]+)/[^:\s]*\.go:\d+:\d+: .*(?:403 Forbidden|404 Not Found|not available)`)

// refusedProviders returns the lego DNS providers whose modules the go
// command could not get, from its output.
func refusedProviders(out string) []string {
	var names []string
	for _, m := range refusedLine.FindAllStringSubmatch(out, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

// dropDNSProviders takes providers out of lego's generated provider list
// (zz_gen_dns_providers.go): each one's import and the case that returns
// it. Anything of theirs left in the file is an error.
func dropDNSProviders(path string, providers []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	for _, p := range providers {
		imp := regexp.MustCompile(`(?m)^\t"` + regexp.QuoteMeta(legoModule+"/providers/dns/"+p) + `"\n`)
		cs := regexp.MustCompile(`(?m)^\tcase [^\n]*:\n\t\treturn ` + regexp.QuoteMeta(p) + `\.[^\n]*\n`)
		if !imp.MatchString(s) || !cs.MatchString(s) {
			return fmt.Errorf("%s: no import or case of the DNS provider %q", path, p)
		}
		s = cs.ReplaceAllString(imp.ReplaceAllString(s, ""), "")
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(p) + `\.`).MatchString(s) {
			return fmt.Errorf("%s: the DNS provider %q is still used after taking out its case", path, p)
		}
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
