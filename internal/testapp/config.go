package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// config is the parsed command line. Every flag has an environment
// equivalent that sets its default; a flag given on the command line wins.
type config struct {
	addr          string        // -addr, TESTAPP_ADDR; default ":8080"
	name          string        // -name, TESTAPP_NAME; default HOSTNAME, else the host name
	version       string        // -version, TESTAPP_VERSION; default "v1"
	healthy       bool          // -healthy, TESTAPP_HEALTHY; default true
	readyAfter    time.Duration // -ready-after, TESTAPP_READY_AFTER; zero means ready at once
	flapHealth    bool          // -flap-health, TESTAPP_FLAP_HEALTH; default false
	ignoreSIGTERM bool          // -ignore-sigterm, TESTAPP_IGNORE_SIGTERM; default false
	dataDir       string        // -data-dir, TESTAPP_DATA_DIR; empty turns /data off
	tcpAddr       string        // -tcp-addr, TESTAPP_TCP_ADDR; empty (the default) means no TCP echo
	probe         string        // -probe [URL]: the URL to probe; empty means serve
}

// probeFlag is -probe: a boolean-style flag so that a bare -probe works,
// whose value, when given as -probe=URL or -probe URL, is the URL.
type probeFlag struct {
	on  bool
	url string
}

func (p *probeFlag) String() string   { return p.url }
func (p *probeFlag) IsBoolFlag() bool { return true }

func (p *probeFlag) Set(v string) error {
	switch v {
	case "true":
		p.on, p.url = true, ""
	case "false":
		p.on, p.url = false, ""
	default:
		p.on, p.url = true, v
	}
	return nil
}

// parseConfig parses args with defaults taken from getenv and hostname.
// Usage and errors are written to output.
func parseConfig(args []string, getenv func(string) string, hostname func() (string, error), output io.Writer) (config, error) {
	cfg := config{addr: ":8080", version: "v1", healthy: true}
	if err := applyEnv(&cfg, getenv, hostname); err != nil {
		fmt.Fprintln(output, err)
		return config{}, err
	}
	fs := flag.NewFlagSet("testapp", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.addr, "addr", cfg.addr, "listen address (env TESTAPP_ADDR)")
	fs.StringVar(&cfg.name, "name", cfg.name, "backend name in responses (env TESTAPP_NAME, else HOSTNAME, else the host name)")
	fs.StringVar(&cfg.version, "version", cfg.version, "version in responses (env TESTAPP_VERSION)")
	fs.BoolVar(&cfg.healthy, "healthy", cfg.healthy, "start healthy (env TESTAPP_HEALTHY)")
	fs.DurationVar(&cfg.readyAfter, "ready-after", cfg.readyAfter, "/healthz fails until this long after start (env TESTAPP_READY_AFTER)")
	fs.BoolVar(&cfg.flapHealth, "flap-health", cfg.flapHealth, "/healthz alternates pass and fail on each call, the first passing (env TESTAPP_FLAP_HEALTH)")
	fs.BoolVar(&cfg.ignoreSIGTERM, "ignore-sigterm", cfg.ignoreSIGTERM, "ignore SIGTERM; only SIGINT or SIGKILL stop the server (env TESTAPP_IGNORE_SIGTERM)")
	fs.StringVar(&cfg.dataDir, "data-dir", cfg.dataDir, "`directory` of the file that /data appends to and reads, e.g. a volume; empty turns /data off (env TESTAPP_DATA_DIR)")
	fs.StringVar(&cfg.tcpAddr, "tcp-addr", cfg.tcpAddr, "listen `address` of a TCP echo server that greets each connection with the name; empty for none (env TESTAPP_TCP_ADDR)")
	var probe probeFlag
	fs.Var(&probe, "probe", "one-shot health check: GET `URL` (optional, default http://127.0.0.1:<port of -addr>/healthz), exit 0 on 2xx/3xx, else 1")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	return finishConfig(cfg, probe, fs.Args(), output)
}

// finishConfig resolves the probe URL and rejects stray arguments.
func finishConfig(cfg config, probe probeFlag, rest []string, output io.Writer) (config, error) {
	if probe.on && probe.url == "" && len(rest) > 0 {
		probe.url, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		err := fmt.Errorf("unexpected argument %q: testapp takes only flags (see -h)", rest[0])
		fmt.Fprintln(output, err)
		return config{}, err
	}
	if probe.on {
		cfg.probe = probe.url
		if cfg.probe == "" {
			cfg.probe = defaultProbeURL(cfg.addr)
		}
	}
	if cfg.readyAfter < 0 {
		err := fmt.Errorf("-ready-after %v: must not be negative", cfg.readyAfter)
		fmt.Fprintln(output, err)
		return config{}, err
	}
	return cfg, nil
}

// applyEnv sets the defaults that the environment gives.
func applyEnv(cfg *config, getenv func(string) string, hostname func() (string, error)) error {
	if v := getenv("TESTAPP_ADDR"); v != "" {
		cfg.addr = v
	}
	cfg.name = defaultName(getenv, hostname)
	if v := getenv("TESTAPP_VERSION"); v != "" {
		cfg.version = v
	}
	cfg.dataDir = getenv("TESTAPP_DATA_DIR")
	cfg.tcpAddr = getenv("TESTAPP_TCP_ADDR")
	var err error
	if cfg.healthy, err = envBool(getenv, "TESTAPP_HEALTHY", cfg.healthy); err != nil {
		return err
	}
	if cfg.ignoreSIGTERM, err = envBool(getenv, "TESTAPP_IGNORE_SIGTERM", cfg.ignoreSIGTERM); err != nil {
		return err
	}
	if cfg.flapHealth, err = envBool(getenv, "TESTAPP_FLAP_HEALTH", cfg.flapHealth); err != nil {
		return err
	}
	if v := getenv("TESTAPP_READY_AFTER"); v != "" {
		if cfg.readyAfter, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("TESTAPP_READY_AFTER=%q: want a duration such as 2s: %w", v, err)
		}
	}
	return nil
}

// defaultName is TESTAPP_NAME, else HOSTNAME (the container ID in a
// container), else the host name, else "testapp".
func defaultName(getenv func(string) string, hostname func() (string, error)) string {
	for _, k := range []string{"TESTAPP_NAME", "HOSTNAME"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	if h, err := hostname(); err == nil && h != "" {
		return h
	}
	return "testapp"
}

func envBool(getenv func(string) string, key string, def bool) (bool, error) {
	v := getenv(key)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("%s=%q: want true or false: %w", key, v, err)
	}
	return b, nil
}

// defaultProbeURL is the /healthz URL of a server listening on addr, reached
// over loopback when addr names no particular host.
func defaultProbeURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		host, port = "", "8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}
