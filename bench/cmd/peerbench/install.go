package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// nginxStreamModule is where Debian's libnginx-mod-stream puts nginx's TCP
// proxy module.
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// aptTimeout bounds each apt-get command.
const aptTimeout = 10 * time.Minute

// lookPath finds a program on PATH or in the sbin directories, which a
// non-login root shell may lack (haproxy and nginx live in /usr/sbin).
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// missingPackages returns the Debian packages that the selected proxies and
// workloads need and the machine lacks.
func missingPackages(o options) []string {
	var http, tcp, h2 bool
	for _, name := range o.workloads {
		switch w := workloadByName(name); {
		case w.tcp:
			tcp = true
		case w.h2:
			h2 = true
		default:
			http = true
		}
	}
	var pkgs []string
	for _, name := range []string{"haproxy", "nginx", "caddy"} {
		if has(o.proxies, name) && lookPath(name) == "" {
			pkgs = append(pkgs, name)
		}
	}
	if has(o.proxies, "nginx") && tcp {
		if _, err := os.Stat(nginxStreamModule); err != nil {
			pkgs = append(pkgs, "libnginx-mod-stream")
		}
	}
	if (http || o.profile) && lookPath("wrk") == "" {
		pkgs = append(pkgs, "wrk")
	}
	if h2 && lookPath("h2load") == "" {
		pkgs = append(pkgs, "nghttp2-client")
	}
	return pkgs
}

// install installs the missing packages with apt-get, non-interactively,
// printing each command. The packages' services are not left running: on a
// machine whose policy-rc.d lets them start, they are stopped again, since
// they would hold port 80 and others.
func (b *bench) install(ctx context.Context) error {
	pkgs := missingPackages(b.opt)
	if len(pkgs) == 0 {
		b.logf("every package needed is installed")
		return nil
	}
	if !b.opt.install {
		b.logf("missing packages %v and -install=false: their rows are skipped", pkgs)
		return nil
	}
	if os.Geteuid() != 0 {
		b.logf("missing packages %v and not root: install them with apt-get, or their rows are skipped", pkgs)
		return nil
	}
	apt := []string{"apt-get", "-o", "DPkg::Lock::Timeout=300", "-y", "-q"}
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if err := b.runLoud(ctx, env, append(apt, "update")...); err != nil {
		return err
	}
	args := append(append(apt, "install", "--no-install-recommends"), pkgs...)
	if err := b.runLoud(ctx, env, args...); err != nil {
		return err
	}
	for _, svc := range []string{"haproxy", "nginx", "caddy"} {
		if !has(pkgs, svc) || lookPath("service") == "" {
			continue
		}
		if exec.CommandContext(ctx, "service", svc, "status").Run() == nil {
			_ = b.runLoud(ctx, nil, "service", svc, "stop")
		}
	}
	return nil
}

// runLoud prints a command, runs it with its output on stderr, and bounds
// it by aptTimeout.
func (b *bench) runLoud(ctx context.Context, env []string, argv ...string) error {
	b.logf("+ %s", shellJoin(argv))
	ctx, cancel := context.WithTimeout(ctx, aptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}
