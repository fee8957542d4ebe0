package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testBackends = []string{"127.0.0.1:9001", "127.0.0.1:9002"}

func TestConfigsNameEveryBackend(t *testing.T) {
	dir := t.TempDir()
	tf := testTLSFiles(t)
	for _, w := range workloadList {
		configs := map[string]string{
			"haproxy": haproxyConfig(w, "127.0.0.1:8000", testBackends, tf),
			"nginx":   nginxConfig(dir, w, "127.0.0.1:8000", testBackends, nginxStreamModule, tf),
			"cutover": cutoverConfig(w, "127.0.0.1:8000", testBackends),
		}
		if !w.tcp {
			configs["caddy"] = caddyConfig(w, "127.0.0.1:8000", testBackends, tf)
		}
		static, dynamic := traefikConfig(dir, w, "127.0.0.1:8000", testBackends, tf)
		configs["traefik"] = dynamic
		if !strings.Contains(static, `address: "127.0.0.1:8000"`) || !strings.Contains(static, filepath.Join(dir, "dynamic.yaml")) {
			t.Errorf("traefik static config for %s lacks the entry point or the dynamic file:\n%s", w.name, static)
		}
		for name, cfg := range configs {
			for _, b := range testBackends {
				if !strings.Contains(cfg, b) {
					t.Errorf("%s config for %s lacks backend %s:\n%s", name, w.name, b, cfg)
				}
			}
			// Only the HTTP/2 workload's configurations name the
			// certificate (HAProxy its bundle of certificate and key).
			want := tf.cert
			if name == "haproxy" {
				want = tf.bundle
			}
			if name != "cutover" && strings.Contains(cfg, want) != w.h2 {
				t.Errorf("%s config for %s: names %s %v, want %v:\n%s", name, w.name, want, !w.h2, w.h2, cfg)
			}
		}
	}
	if cfg := cutoverConfig(workloadByName("tcpecho"), "127.0.0.1:8000", testBackends); !strings.Contains(cfg, "tcp.listen: 8000") {
		t.Errorf("cutover TCP config lacks tcp.listen:\n%s", cfg)
	}
}

// TestConfigsAreValid has each installed proxy check its configuration.
func TestConfigsAreValid(t *testing.T) {
	dir := t.TempDir()
	check := func(name string, argv ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	ran := false
	tf := testTLSFiles(t)
	for _, w := range []workload{workloadByName("ka100"), workloadByName("tcpecho"), workloadByName("h2tls")} {
		if bin := lookPath("haproxy"); bin != "" {
			path, _ := writeFile(dir, "haproxy-"+w.name+".cfg", haproxyConfig(w, "127.0.0.1:8000", testBackends, tf))
			check("haproxy -c "+w.name, bin, "-c", "-q", "-f", path)
			ran = true
		}
		if bin := lookPath("nginx"); bin != "" {
			if _, err := os.Stat(nginxStreamModule); w.tcp && err != nil {
				continue
			}
			path, _ := writeFile(dir, "nginx-"+w.name+".conf", nginxConfig(dir, w, "127.0.0.1:8000", testBackends, nginxStreamModule, tf))
			check("nginx -t "+w.name, bin, "-t", "-q", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
			ran = true
		}
		if bin := lookPath("caddy"); bin != "" && !w.tcp {
			path, _ := writeFile(dir, "Caddyfile", caddyConfig(w, "127.0.0.1:8000", testBackends, tf))
			check("caddy adapt", bin, "adapt", "--config", path, "--adapter", "caddyfile")
			ran = true
		}
	}
	if !ran {
		t.Skip("none of haproxy, nginx, caddy is installed (peerbench installs them)")
	}
}

func TestReconfigYAML(t *testing.T) {
	y := reconfigYAML(25, "new-1.test", testBackends)
	if n := strings.Count(y, "127.0.0.1:1"); n != 25 {
		t.Errorf("%d filler backends, want 25:\n%s", n, y)
	}
	if strings.Count(y, "  fill-") != 3 || !strings.Contains(y, "host: new-1.test") {
		t.Errorf("want 3 filler services and the new host:\n%s", y)
	}
	if strings.Contains(reconfigYAML(0, "", testBackends), "fill-") {
		t.Error("filler services without extra backends")
	}
}

func testTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	tf, err := makeTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return tf
}
