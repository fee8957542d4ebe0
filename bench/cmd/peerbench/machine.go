package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machineInfo describes where the figures were measured.
type machineInfo struct {
	cpus     int
	cpuModel string
	kernel   string
	memory   string
	loadavg  string
	versions []string // "HAProxy 2.6.12-1+deb12u4", …
}

func readMachine(ctx context.Context, b *bench) machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), cpuModel: cpuModel(), kernel: firstLine("/proc/sys/kernel/osrelease"),
		loadavg: firstLine("/proc/loadavg")}
	if f := strings.Fields(grepFirst("/proc/meminfo", "MemTotal:")); len(f) >= 2 {
		m.memory = f[1] + " kB"
	}
	m.versions = append(m.versions, runtime.Version()+" (peerbench, cutover)")
	if b.cutoverSource != "" {
		m.versions = append(m.versions, "cutover built from "+b.cutoverSource)
	}
	for _, v := range []struct{ bin, title string }{{"haproxy", "HAProxy"}, {"nginx", "nginx"}, {"caddy", "Caddy"}, {"traefik", "Traefik"}, {"wrk", "wrk"}, {"h2load", "h2load"}} {
		path := b.bins[v.bin]
		if path == "" {
			continue
		}
		m.versions = append(m.versions, v.title+" "+version(ctx, v.bin, path))
	}
	return m
}

func cpuModel() string {
	_, v, _ := strings.Cut(grepFirst("/proc/cpuinfo", "model name"), ":")
	return strings.TrimSpace(v)
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func grepFirst(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	return ""
}

// version asks a program for its version and keeps the version word.
func version(ctx context.Context, name, path string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var args []string
	switch name {
	case "caddy", "traefik":
		args = []string{"version"}
	case "h2load":
		args = []string{"--version"}
	default:
		args = []string{"-v"}
	}
	out, _ := exec.CommandContext(ctx, path, args...).CombinedOutput() // wrk -v exits 1
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(line)
	switch {
	case name == "haproxy" && len(f) >= 3: // HAProxy version 2.6.12-1+deb12u4 2025/…
		return f[2]
	case name == "nginx" && len(f) >= 3: // nginx version: nginx/1.22.1
		return strings.TrimPrefix(f[2], "nginx/")
	case name == "h2load" && len(f) >= 2: // h2load nghttp2/1.52.0
		return strings.TrimPrefix(f[1], "nghttp2/")
	case name == "traefik" && len(f) >= 2: // Version:      v3.7.13
		return f[1]
	case name == "wrk" && len(f) >= 2: // wrk 4.1.0 [epoll] Copyright …
		return f[1]
	case len(f) >= 1: // v2.6.2 h1:…
		return f[0]
	}
	return "(version unknown)"
}

// shellJoin quotes argv for display.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t'\"$;&|<>*?()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
