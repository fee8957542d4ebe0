package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/cutoverproxy/cutover/admin"
	"github.com/cutoverproxy/cutover/deploy"
)

// adminClient talks to a running cutover's admin API.
type adminClient struct {
	addr  string
	token string
}

func (c *adminClient) flags(fs *flagSet) {
	fs.StringVar(&c.addr, "admin", "http://127.0.0.1:8081", "`URL` of the running cutover's admin listener")
	fs.StringVar(&c.token, "admin-token", "", "the `token` the running cutover was started with (--admin-token)")
}

func (c *adminClient) url(path string) string { return strings.TrimRight(c.addr, "/") + path }

// do sends a request and returns the response when its status is 2xx; an
// error status becomes an error that carries the server's message.
func (c *adminClient) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), rd)
	if err != nil {
		return nil, fmt.Errorf("--admin %q: %w", c.addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach cutover at %s (--admin): %w", c.addr, err)
	}
	if res.StatusCode/100 == 2 {
		return res, nil
	}
	defer res.Body.Close()
	var e struct{ Error string }
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
	}
	return nil, fmt.Errorf("%s: %s", res.Status, e.Error)
}

// deployFlags are the flags of "cutover deploy" and "cutover rollback".
type deployFlags struct {
	client adminClient
	req    admin.DeployRequest
	drain  time.Duration
	health time.Duration
	pause  time.Duration
}

func (d *deployFlags) define(fs *flagSet, image bool) {
	d.client.flags(fs)
	if image {
		fs.StringVar(&d.req.Image, "image", "", "the new `image` reference, e.g. app:v2 (required)")
	}
	fs.BoolVar(&d.req.Pull, "pull", false, "pull the image even when a copy is present locally (a tag that moved in the registry)")
	fs.StringVar(&d.req.Strategy, "strategy", "", "`strategy`: rolling, blue-green or recreate; default the service's cutover.deploy.strategy label, else rolling")
	fs.IntVar(&d.req.Batch, "batch", 0, "rolling: how many containers to replace at a time (default 1)")
	fs.DurationVar(&d.drain, "drain-timeout", deploy.DefaultDrainTimeout, "how long an old container's in-flight requests may take to finish before it is stopped")
	fs.DurationVar(&d.health, "health-timeout", deploy.DefaultHealthTimeout, "how long new containers may take to pass their health checks before the deploy is rolled back")
	fs.DurationVar(&d.pause, "max-pause", deploy.DefaultMaxPause, "recreate: how long the proxy holds incoming requests while no container runs")
}

func deploySetup() (*flagSet, runFunc) {
	var d deployFlags
	fs := newFlagSet("deploy", "Replace the containers of SERVICE with containers of a new image, without dropping a request. Exits non-zero when the deploy failed or was rolled back.")
	fs.positional, fs.maxArgs = "SERVICE", 1
	d.define(fs, true)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		if len(fs.args) != 1 || d.req.Image == "" {
			return errors.New("usage: cutover deploy SERVICE --image IMAGE")
		}
		return d.run(ctx, stdout, "/api/v1/services/"+url.PathEscape(fs.args[0])+"/deploy")
	}
}

func rollbackSetup() (*flagSet, runFunc) {
	var d deployFlags
	fs := newFlagSet("rollback", "Deploy the image that the containers of SERVICE replaced. Exits non-zero when it failed.")
	fs.positional, fs.maxArgs = "SERVICE", 1
	d.define(fs, false)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		if len(fs.args) != 1 {
			return errors.New("usage: cutover rollback SERVICE")
		}
		return d.run(ctx, stdout, "/api/v1/services/"+url.PathEscape(fs.args[0])+"/rollback")
	}
}

// run posts the deploy and shows its steps as they arrive.
func (d *deployFlags) run(ctx context.Context, stdout io.Writer, path string) error {
	d.req.DrainTimeout, d.req.HealthTimeout, d.req.MaxPause = admin.Duration(d.drain), admin.Duration(d.health), admin.Duration(d.pause)
	res, err := d.client.do(ctx, "POST", path, d.req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	show := newProgress(stdout)
	defer show.stop()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev struct {
			Step   *deploy.Step
			Result *deploy.Result
			Error  string
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("read progress: %w", err)
		}
		switch {
		case ev.Step != nil:
			show.step(*ev.Step)
		case ev.Result != nil || ev.Error != "":
			show.stop()
			return finish(stdout, ev.Result, ev.Error)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the connection to cutover broke during the deploy (it goes on there; see cutover deploys): %w", err)
	}
	return errors.New("cutover ended the stream without a result (see cutover deploys)")
}

func finish(w io.Writer, r *deploy.Result, errText string) error {
	if r != nil {
		fmt.Fprintf(w, "%s %s: %s %s in %s (deploy %s)\n", r.Service, r.Outcome, r.Strategy, r.Image, r.Duration.Round(time.Millisecond), r.ID)
	}
	if errText != "" {
		return errors.New(errText)
	}
	if r != nil && r.Error != "" {
		fmt.Fprintf(w, "warning: %s\n", r.Error)
	}
	if r == nil || r.Outcome != "succeeded" {
		return errors.New("the deploy did not succeed")
	}
	return nil
}

// progress shows deploy steps: one line each, and on a terminal a live
// status line below them with the current step and its elapsed time.
type progress struct {
	w     io.Writer
	live  bool
	ch    chan deploy.Step
	done  chan struct{}
	ended bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, ch: make(chan deploy.Step), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		p.live = true
		go p.animate()
	} else {
		close(p.done)
	}
	return p
}

func (p *progress) step(s deploy.Step) {
	if p.live {
		p.ch <- s
		return
	}
	fmt.Fprintln(p.w, stepLine(s))
}

func (p *progress) stop() {
	if p.ended {
		return
	}
	p.ended = true
	if p.live {
		close(p.ch)
	}
	<-p.done
}

// animate redraws the status line until the steps end.
func (p *progress) animate() {
	defer close(p.done)
	frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var cur deploy.Step
	var since time.Time
	for i := 0; ; i++ {
		select {
		case s, ok := <-p.ch:
			fmt.Fprint(p.w, "\r\033[K")
			if !ok {
				return
			}
			fmt.Fprintln(p.w, stepLine(s))
			cur, since = s, time.Now()
		case <-tick.C:
		}
		if !since.IsZero() {
			fmt.Fprintf(p.w, "\r\033[K%c %s: %s (%s)", frames[i%len(frames)], cur.Service, cur.Message, time.Since(since).Round(time.Second))
		}
	}
}

func stepLine(s deploy.Step) string {
	line := s.At.Format("15:04:05") + "  " + fmt.Sprintf("%-8s", s.Phase)
	if s.Container != "" {
		line += "  " + s.Container
	}
	return line + "  " + s.Message
}

func deploysSetup() (*flagSet, runFunc) {
	var c adminClient
	fs := newFlagSet("deploys", "List the deploys of SERVICE (or of all services): newest first.")
	fs.positional, fs.maxArgs = "[SERVICE]", 1
	c.flags(fs)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		path := "/api/v1/deploys"
		if len(fs.args) == 1 {
			path += "?service=" + url.QueryEscape(fs.args[0])
		}
		res, err := c.do(ctx, "GET", path, nil)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var list []deploy.Result
		if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
			return fmt.Errorf("read deploys: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STARTED\tSERVICE\tID\tSTRATEGY\tIMAGE\tPREVIOUS\tOUTCOME\tDURATION")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Started.Format(time.RFC3339), r.Service, r.ID,
				r.Strategy, r.Image, r.Previous, r.Outcome, r.Duration.Round(time.Millisecond))
		}
		return tw.Flush()
	}
}
