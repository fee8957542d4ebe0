package e2e

// Helpers of the deploy tests (deploy_*_test.go): app images built FROM
// the local testapp image (no registry can be reached), a cutover with the
// deploy endpoints on, services whose containers — the copies that
// deploys create included — are found and removed by a group label, and
// the deploys as the admin API reports them. The CLI runner is in
// deploy_cli_test.go, the load in deploy_load_test.go, a registry for
// webhook pulls in deploy_registry_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	// groupLabel marks the containers of one deploy test's service. A
	// deploy copies every label to the containers it creates, so the
	// label finds those too.
	groupLabel = "cutover-e2e-group"
	// deployHealth is the interval of the services' active health check.
	deployHealth = "300ms"
	// cliTimeout bounds one run of the cutover CLI.
	cliTimeout = 90 * time.Second
)

// appRepo is a repository of app images built for one test, named
// cutover-e2e-app-<random>; every tag it gets is removed when the test
// ends.
type appRepo struct {
	t    *testing.T
	name string
	mu   sync.Mutex
	tags []string
}

// newAppRepo builds <repo>:<tag> for each tag in envs, FROM the testapp
// image with TESTAPP_VERSION=<tag> and the given extra ENV lines. Call it
// before the test starts containers: the images are removed after them.
func newAppRepo(t *testing.T, envs map[string]map[string]string) *appRepo {
	t.Helper()
	r := &appRepo{t: t, name: "cutover-e2e-app-" + suffix()}
	t.Cleanup(r.remove)
	for _, tag := range slices.Sorted(maps.Keys(envs)) {
		r.build(tag, envs[tag])
	}
	return r
}

// build builds <repo>:<tag> with the legacy builder, which builds FROM a
// local image without pulling.
func (r *appRepo) build(tag string, env map[string]string) {
	r.t.Helper()
	dir := r.t.TempDir()
	var df strings.Builder
	fmt.Fprintf(&df, "FROM %s\nENV TESTAPP_VERSION=%s\n", testappImage, tag)
	for _, k := range sortedKeys(env) {
		fmt.Fprintf(&df, "ENV %s=%s\n", k, env[k])
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		r.t.Fatal(err)
	}
	ref := r.ref(tag)
	r.track(ref)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "--label", testLabel, "-t", ref, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("docker build -t %s:\n%s\n%s: %v", ref, df.String(), out, err)
	}
}

// ref is <repo>:<tag>.
func (r *appRepo) ref(tag string) string { return r.name + ":" + tag }

func (r *appRepo) track(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.tags, ref) {
		r.tags = append(r.tags, ref)
	}
}

// tag points <repo>:<dst> at the image of <repo>:<src>, as docker tag
// does after a push to a registry moved a tag.
func (r *appRepo) tag(src, dst string) {
	r.t.Helper()
	r.track(r.ref(dst))
	docker(r.t, "tag", r.ref(src), r.ref(dst))
}

// id returns the image ID of <repo>:<tag>.
func (r *appRepo) id(tag string) string {
	r.t.Helper()
	return docker(r.t, "image", "inspect", "-f", "{{.Id}}", r.ref(tag))
}

func (r *appRepo) remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ref := range r.tags {
		if _, err := dockerErr("image", "rm", ref); err != nil && !strings.Contains(err.Error(), "No such image") {
			r.t.Errorf("remove image: %v", err)
		}
	}
}

// deployEnv is a cutover with Docker discovery and the deploy endpoints
// on, a network and an image repository, for one test.
type deployEnv struct {
	t       *testing.T
	in      *instance
	network string
	repo    *appRepo
	token   string // --admin-token
}

// newDeployEnv builds the images of envs (see newAppRepo) and starts
// cutover with an admin token and extraArgs.
func newDeployEnv(t *testing.T, envs map[string]map[string]string, extraArgs ...string) *deployEnv {
	t.Helper()
	buildImages(t)
	e := &deployEnv{t: t, repo: newAppRepo(t, envs), token: "admin-" + suffix()}
	e.network = newNetwork(t)
	e.in = startDocker(t, append([]string{"--admin-token", e.token}, extraArgs...)...)
	return e
}

// appService is a routed service of testapp containers, grouped by a label.
type appService struct {
	e          *deployEnv
	name, host string
	group      string // value of groupLabel
}

// serviceSpec describes the containers of a service.
type serviceSpec struct {
	Prefix   string            // of names and host
	Image    string            // tag in the env's repo
	Replicas int               // containers
	Labels   map[string]string // besides the routing and health ones
	Env      map[string]string
	Args     []string // extra docker run arguments
}

// newService starts the containers of s and waits until the proxy serves
// every one. The containers answer with their host name (the short
// container ID, which a copy does not inherit), not TESTAPP_NAME, which a
// copy would. Every container of the group is removed when the test ends.
func (e *deployEnv) newService(s serviceSpec) *appService {
	e.t.Helper()
	sfx := suffix()
	svc := &appService{e: e, name: s.Prefix + "-" + sfx, host: s.Prefix + "-" + sfx + ".test", group: sfx}
	e.t.Cleanup(svc.removeAll)
	labels := healthLabels(svc.host, svc.name, "interval", deployHealth)
	labels[groupLabel] = sfx
	for k, v := range s.Labels {
		labels[k] = v
	}
	for i := 1; i <= s.Replicas; i++ {
		args := []string{"run", "-d", "--name", fmt.Sprintf("cutover-e2e-%s%d-%s", s.Prefix, i, sfx),
			"--network", e.network, "--label", testLabel, "--no-healthcheck"}
		for _, k := range sortedKeys(labels) {
			args = append(args, "--label", k+"="+labels[k])
		}
		for _, k := range sortedKeys(s.Env) {
			args = append(args, "-e", k+"="+s.Env[k])
		}
		args = append(append(args, s.Args...), e.repo.ref(s.Image))
		docker(e.t, args...)
	}
	svc.waitServed(s.Replicas)
	return svc
}

// removeAll removes every container of the group, logging their output
// first when the test failed.
func (s *appService) removeAll() {
	out, err := dockerErr("ps", "-aq", "--filter", "label="+groupLabel+"="+s.group)
	if err != nil {
		s.e.t.Errorf("list the containers of service %s: %v", s.name, err)
		return
	}
	for _, id := range strings.Fields(out) {
		if s.e.t.Failed() {
			s.e.t.Logf("logs of container %s:\n%s", id, containerLogs(id))
		}
		if _, err := dockerErr("rm", "-f", id); err != nil && !strings.Contains(err.Error(), "No such container") {
			s.e.t.Errorf("remove container: %v", err)
		}
	}
}

// waitServed waits until the proxy has n backends of the service, all
// available.
func (s *appService) waitServed(n int) {
	s.e.t.Helper()
	eventually(s.e.t, 20*time.Second, func() error {
		doc, err := fetchStatus(s.e.in.admin)
		if err != nil {
			return err
		}
		bs := doc.backends(s.name)
		up := 0
		for _, b := range bs {
			if b.Available {
				up++
			}
		}
		if len(bs) != n || up != n {
			return fmt.Errorf("service %s has %d backends, %d available, want %d available: %+v", s.name, len(bs), up, n, bs)
		}
		return nil
	})
}

// appBox is a container of a service, as docker ps and inspect see it.
type appBox struct {
	ID, Name, State string
	ImageID         string // the image it runs
	Ref             string // the image reference it was created with
	Labels          map[string]string
	IP              string
}

func (b appBox) String() string {
	return fmt.Sprintf("%s (%s, %s, image %s = %s)", b.Name, b.ID[:12], b.State, b.Ref, shortImageID(b.ImageID))
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// containers returns every container of the group, running or not.
func (s *appService) containers() []appBox {
	s.e.t.Helper()
	ids := strings.Fields(docker(s.e.t, "ps", "-aq", "--no-trunc", "--filter", "label="+groupLabel+"="+s.group))
	var out []appBox
	for _, id := range ids {
		raw, err := dockerErr("inspect", id)
		if err != nil {
			if strings.Contains(err.Error(), "No such") {
				continue // removed since the list
			}
			s.e.t.Fatal(err)
		}
		var doc []struct {
			ID, Name, Image string
			State           struct{ Status string }
			Config          struct {
				Image  string
				Labels map[string]string
			}
			NetworkSettings struct {
				Networks map[string]struct{ IPAddress string }
			}
		}
		if err := json.Unmarshal([]byte(raw), &doc); err != nil || len(doc) != 1 {
			s.e.t.Fatalf("docker inspect %s: %v", id, err)
		}
		d := doc[0]
		out = append(out, appBox{ID: d.ID, Name: strings.TrimPrefix(d.Name, "/"), State: d.State.Status, ImageID: d.Image,
			Ref: d.Config.Image, Labels: d.Config.Labels, IP: d.NetworkSettings.Networks[s.e.network].IPAddress})
	}
	slices.SortFunc(out, func(a, b appBox) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// runningImage checks that the group has exactly n containers, all
// running the image of tag (by ID): none of another version is left,
// stopped or not.
func (s *appService) runningImage(tag string, n int) []appBox {
	s.e.t.Helper()
	want := s.e.repo.id(tag)
	bs := s.containers()
	bad := len(bs) != n
	for _, b := range bs {
		if b.State != "running" || b.ImageID != want {
			bad = true
		}
	}
	if bad {
		s.e.t.Errorf("service %s: want %d running containers of %s (%s), have %d: %v", s.name, n, s.e.repo.ref(tag), shortImageID(want), len(bs), bs)
	}
	return bs
}

// waitImage waits until the group's containers are n, all running the
// image of tag.
func (s *appService) waitImage(tag string, n int, timeout time.Duration) []appBox {
	s.e.t.Helper()
	want := s.e.repo.id(tag)
	var bs []appBox
	eventually(s.e.t, timeout, func() error {
		bs = s.containers()
		if len(bs) != n {
			return fmt.Errorf("service %s has %d containers, want %d of %s: %v", s.name, len(bs), n, s.e.repo.ref(tag), bs)
		}
		for _, b := range bs {
			if b.State != "running" || b.ImageID != want {
				return fmt.Errorf("service %s: %v, want %d running containers of %s (%s)", s.name, bs, n, s.e.repo.ref(tag), shortImageID(want))
			}
		}
		return nil
	})
	return bs
}

// ids returns the container IDs of bs.
func boxIDs(bs []appBox) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

// answers sends n GETs for the service through the proxy and checks that
// every one is answered 200 with X-Version version.
func (s *appService) answers(version string, n int) {
	s.e.t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		res, body, err := s.get(cl, "/")
		if err != nil || res.StatusCode != 200 || res.Header.Get("X-Version") != version {
			got := "no answer"
			if res != nil {
				got = fmt.Sprintf("%s X-Version %q", res.Status, res.Header.Get("X-Version"))
			}
			s.e.t.Fatalf("GET %d of %d for %s: %s %q %v; want 200 from %s", i+1, n, s.host, got, body, err, version)
		}
	}
}

// get sends one GET for the service through the proxy.
func (s *appService) get(cl *http.Client, path string) (*http.Response, string, error) {
	req, err := http.NewRequest("GET", s.e.in.http+path, nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = s.host
	res, err := cl.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

// deployResult is an entry of GET /api/v1/deploys.
type deployResult struct {
	ID, Service, Strategy, Image, Previous, Outcome, Error, Trigger string
	Started                                                         time.Time
	Duration                                                        time.Duration
}

// history reads the service's deploys from the admin API, newest first.
func (s *appService) history() []deployResult {
	s.e.t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	res, err := cl.Get(s.e.in.admin + "/api/v1/deploys?service=" + s.name)
	if err != nil {
		s.e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out []deployResult
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		s.e.t.Fatalf("GET /api/v1/deploys: %s %s", res.Status, b)
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		s.e.t.Fatalf("decode /api/v1/deploys: %v", err)
	}
	return out
}

// last returns the service's newest deploy.
func (s *appService) last() deployResult {
	s.e.t.Helper()
	h := s.history()
	if len(h) == 0 {
		s.e.t.Fatalf("no deploy of service %s is known", s.name)
	}
	return h[0]
}

// waitDeploy waits until the service's history has a deploy, newer than
// since, that ran to its end with the given trigger, and returns it.
func (s *appService) waitDeploy(trigger string, since time.Time, timeout time.Duration) deployResult {
	s.e.t.Helper()
	var got deployResult
	eventually(s.e.t, timeout, func() error {
		for _, r := range s.history() {
			if r.Trigger == trigger && !r.Started.Before(since) {
				got = r
				return nil
			}
		}
		return fmt.Errorf("no %s deploy of service %s since %s yet", trigger, s.name, since.Format(time.TimeOnly))
	})
	return got
}

// deployed checks the labels that a deploy writes on the containers it
// creates.
func deployed(t *testing.T, bs []appBox, r deployResult) {
	t.Helper()
	for _, b := range bs {
		l := b.Labels
		if l["cutover.deploy.id"] != r.ID || l["cutover.deploy.image"] != r.Image || l["cutover.deploy.previous"] != r.Previous || l["cutover.deploy.time"] == "" {
			t.Errorf("container %s has deploy labels id=%q image=%q previous=%q time=%q; want those of deploy %s (%s, replacing %s)",
				b.Name, l["cutover.deploy.id"], l["cutover.deploy.image"], l["cutover.deploy.previous"], l["cutover.deploy.time"], r.ID, r.Image, r.Previous)
		}
	}
}

// logDuration prints a deploy's duration for the README's figures.
func logDuration(t *testing.T, what string, r deployResult, l *versionLoad) {
	t.Helper()
	t.Logf("DEPLOY FIGURES: %s: %s %s → %s in %s (outcome %s); load: %s", what, r.Strategy, r.Previous, r.Image,
		r.Duration.Round(time.Millisecond), r.Outcome, l)
}

// deployCount reads cutover_deploys_total for the service.
func (s *appService) deployCount(t *testing.T, strategy, result string) float64 {
	t.Helper()
	return metricValue(t, s.e.in, "cutover_deploys_total", map[string]string{"service": s.name, "strategy": strategy, "result": result})
}
