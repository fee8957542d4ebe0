package e2e

// The harness of the tests that run against the real Docker Engine: images,
// networks and testapp containers, each labelled testLabel and removed when
// the test ends.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// testLabel marks every resource the tests create. It is not a
	// cutover.* key, which cutover would report as unknown.
	testLabel = "cutover-test=1"
	// imageTag tags the images the tests build.
	imageTag      = "e2e"
	cutoverImage  = "cutover:" + imageTag
	testappImage  = "cutover-testapp:" + imageTag
	testappPort   = "8080"
	dockerTimeout = 60 * time.Second
)

// docker runs the docker CLI and returns its trimmed standard output.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dockerErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dockerErr runs the docker CLI, bounded by dockerTimeout. The CLI always
// talks to the engine the test process was started with, whatever
// DOCKER_HOST a test gives cutover.
func dockerErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// requireDocker skips the test when no Docker Engine answers, except in CI
// (CI=true), where that is a failure: CI starts one.
func requireDocker(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("docker")
	if err == nil {
		_, err = dockerErr("info", "--format", "{{.ServerVersion}}")
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no Docker Engine answers (CI=true, so this fails instead of skipping): %v", err)
	}
	t.Skipf("no Docker Engine answers; skipping the tests that need one: %v", err)
}

// images builds the test images once per test binary.
var images struct {
	once sync.Once
	err  error
}

// buildImages builds cutover:e2e and cutover-testapp:e2e from the working
// tree with scripts/build-images, once per test binary.
func buildImages(t testing.TB) {
	t.Helper()
	requireDocker(t)
	images.once.Do(func() {
		script, err := filepath.Abs("../scripts/build-images")
		if err != nil {
			images.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		old := imageIDs(cutoverImage, testappImage)
		cmd := exec.CommandContext(ctx, script, "cutover", "testapp")
		cmd.Env = append(os.Environ(), "TAG="+imageTag)
		if out, err := cmd.CombinedOutput(); err != nil {
			images.err = fmt.Errorf("TAG=%s scripts/build-images: %w\n%s", imageTag, err, out)
			return
		}
		// The images the tags moved away from would be left dangling.
		now := imageIDs(cutoverImage, testappImage)
		for i, id := range old {
			if id != "" && id != now[i] {
				_, _ = dockerErr("image", "rm", id) // fails, harmlessly, if another tag or a container uses it
			}
		}
	})
	if images.err != nil {
		t.Fatal(images.err)
	}
}

// imageIDs returns the IDs of the named images, "" for those that do not
// exist.
func imageIDs(names ...string) []string {
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i], _ = dockerErr("image", "inspect", "-f", "{{.Id}}", n)
	}
	return ids
}

// suffix returns a random suffix that keeps names unique per test.
func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newNetwork creates a bridge network and returns its name.
func newNetwork(t testing.TB) string {
	t.Helper()
	name := "cutover-e2e-" + suffix()
	docker(t, "network", "create", "--label", testLabel, name)
	t.Cleanup(func() {
		if _, err := dockerErr("network", "rm", name); err != nil {
			t.Errorf("remove network: %v", err)
		}
	})
	return name
}

// appSpec describes a testapp container.
type appSpec struct {
	// Name of the container, unique; also the name the app answers with.
	Name string
	// Network to attach it to.
	Network string
	// Labels besides testLabel.
	Labels map[string]string
	// Env besides TESTAPP_NAME.
	Env map[string]string
	// Health is the interval of the image's HEALTHCHECK, e.g. "200ms".
	// Empty turns the health check off (--no-healthcheck).
	Health string
	// Args are extra docker run arguments.
	Args []string
}

// ctr is a container the test created.
type ctr struct {
	t    testing.TB
	ID   string
	Name string
	IP   string // address on its network
}

// runTestapp starts a testapp container, waits for docker run to return,
// and removes it when the test ends.
func runTestapp(t testing.TB, s appSpec) *ctr {
	t.Helper()
	c := &ctr{t: t, Name: s.Name}
	t.Cleanup(c.remove)
	c.ID = docker(t, runArgs(s)...)
	c.IP = docker(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", s.Network), c.ID)
	return c
}

// runArgs are the docker arguments that run s, detached.
func runArgs(s appSpec) []string {
	args := []string{"run", "-d", "--name", s.Name, "--network", s.Network, "--label", testLabel,
		"-e", "TESTAPP_NAME=" + s.Name}
	for _, k := range sortedKeys(s.Labels) {
		args = append(args, "--label", k+"="+s.Labels[k])
	}
	for _, k := range sortedKeys(s.Env) {
		args = append(args, "-e", k+"="+s.Env[k])
	}
	if s.Health == "" {
		args = append(args, "--no-healthcheck")
	} else {
		args = append(args, "--health-interval", s.Health)
	}
	return append(append(args, s.Args...), testappImage)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// remove removes the container if it still exists; when the test failed it
// logs the container's output first.
func (c *ctr) remove() {
	if c.t.Failed() {
		c.t.Logf("logs of %s:\n%s", c.Name, containerLogs(c.Name))
	}
	if _, err := dockerErr("rm", "-f", c.Name); err != nil && !strings.Contains(err.Error(), "No such container") {
		c.t.Errorf("remove container: %v", err)
	}
}

// stop runs docker stop -t timeout and returns when it has.
func (c *ctr) stop(timeout int) {
	c.t.Helper()
	docker(c.t, "stop", "-t", fmt.Sprint(timeout), c.Name)
}

// stopAsync runs docker stop -t timeout in the background; the returned
// channel receives its result.
func (c *ctr) stopAsync(timeout int) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := dockerErr("stop", "-t", fmt.Sprint(timeout), c.Name)
		done <- err
	}()
	return done
}

func (c *ctr) start() {
	c.t.Helper()
	docker(c.t, "start", c.Name)
}

// containerLogs returns the output of a container, or why there is none.
func containerLogs(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", "--tail", "300", name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("docker logs %s: %v: %s", name, err, out)
	}
	return string(out)
}

// requests reads the number of echo requests the app served, from the app
// itself.
func (c *ctr) requests() (int64, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	res, err := cl.Get("http://" + c.IP + ":" + testappPort + "/stats")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var st struct{ Requests int64 }
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("decode /stats of %s: %w", c.Name, err)
	}
	return st.Requests, nil
}

// startDocker runs cutover on the host with Docker discovery on and no
// file services.
func startDocker(t testing.TB, extraArgs ...string) *instance {
	t.Helper()
	return start(t, "", append([]string{"--docker=true"}, extraArgs...)...)
}

// dockerDoc is the part of GET /api/v1/services these tests read.
type dockerDoc struct {
	Services []struct {
		Name   string
		Routes []struct {
			Host, Path string
		}
		Backends []apiBackend
	}
	Problems []struct {
		Provider, Source, Key, Message string
	}
}

type apiBackend struct {
	Name, Address, State string
	Available            bool
	Requests             uint64
}

// fetchStatus reads the admin API of the cutover at admin (a base URL).
func fetchStatus(admin string) (dockerDoc, error) {
	var doc dockerDoc
	cl := &http.Client{Timeout: 2 * time.Second}
	res, err := cl.Get(admin + "/api/v1/services")
	if err != nil {
		return doc, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return doc, fmt.Errorf("GET /api/v1/services: %s", res.Status)
	}
	err = json.NewDecoder(res.Body).Decode(&doc)
	return doc, err
}

// backends returns the backends of the named service, or nil.
func (d dockerDoc) backends(service string) []apiBackend {
	for _, s := range d.Services {
		if s.Name == service {
			return s.Backends
		}
	}
	return nil
}

// backendAt returns the backend dialled at ip (any service), or false.
func (d dockerDoc) backendAt(ip string) (apiBackend, bool) {
	for _, s := range d.Services {
		for _, b := range s.Backends {
			if strings.HasPrefix(b.Address, ip+":") {
				return b, true
			}
		}
	}
	return apiBackend{}, false
}

// problemsOf returns the problems whose source names the container.
func (d dockerDoc) problemsOf(container string) map[string]string {
	out := map[string]string{}
	for _, p := range d.Problems {
		if p.Source == "container "+container || strings.Contains(p.Source, container) {
			out[p.Key] = p.Message
		}
	}
	return out
}

// addresses returns the sorted IPs of backends.
func addresses(bs []apiBackend) []string {
	var out []string
	for _, b := range bs {
		ip, _, _ := strings.Cut(b.Address, ":")
		out = append(out, ip)
	}
	slices.Sort(out)
	return out
}

// ips returns the sorted IPs of cs.
func ips(cs ...*ctr) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.IP)
	}
	slices.Sort(out)
	return out
}

// getVia sends GET base+path with the given Host and returns the status,
// the name the app answered with (the first word of the body) and the body.
func getVia(c *http.Client, base, host, path string) (int, string, string, error) {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	var body bytes.Buffer
	_, err = body.ReadFrom(res.Body)
	name, _, _ := strings.Cut(body.String(), " ")
	return res.StatusCode, name, body.String(), err
}

// waitRouted polls base (cutover's HTTP URL) until a GET for host and path
// is answered 200 by the named container, and returns how long that took.
func waitRouted(t testing.TB, base, host, path, name string, timeout time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	cl := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Since(begin) < timeout {
		code, got, body, err := getVia(cl, base, host, path)
		if err == nil && code == 200 && got == name {
			return time.Since(begin)
		}
		last = fmt.Sprintf("%d %q %v", code, body, err)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("GET %s%s (Host %s) not answered by %s within %s; last: %s", base, path, host, name, timeout, last)
	return 0
}

// dockerLabels returns the labels of a routed testapp: enabled, with the
// given host and path, on the app's port.
func dockerLabels(kv ...string) map[string]string {
	m := map[string]string{"cutover.enable": "true", "cutover.port": testappPort}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
