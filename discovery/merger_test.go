package discovery

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timeout bounds every wait on the Merger; nothing waits for it to pass.
const timeout = 5 * time.Second

func svc(provider, name string, routes ...Route) Service {
	return Service{Name: name, Provider: provider, Routes: routes}
}

func rt(host, path string) Route { return Route{Host: host, Path: path} }

func TestMerge(t *testing.T) {
	tests := []struct {
		name      string
		snaps     []Snapshot
		want      []Service
		wantProbs []string // Problem.Error() substrings, in order
	}{
		{
			name: "nothing",
		},
		{
			name: "disjoint providers are combined and sorted",
			snaps: []Snapshot{
				{Services: []Service{svc("docker", "web", rt("a.com", "/"))}},
				{Services: []Service{svc("file", "api", rt("b.com", "/"))}},
			},
			want: []Service{svc("file", "api", rt("b.com", "/")), svc("docker", "web", rt("a.com", "/"))},
		},
		{
			name: "duplicate service name: the earlier provider wins",
			snaps: []Snapshot{
				{Services: []Service{svc("docker", "web", rt("a.com", "/"))}},
				{Services: []Service{svc("file", "web", rt("b.com", "/"))}},
			},
			want:      []Service{svc("docker", "web", rt("a.com", "/"))},
			wantProbs: []string{"service web: service name is already defined by provider docker"},
		},
		{
			name: "same host and path in two providers: the earlier keeps it",
			snaps: []Snapshot{
				{Services: []Service{svc("file", "static", rt("a.com", "/"))}},
				{Services: []Service{svc("docker", "app", rt("a.com", "/"), rt("a.com", "/api"))}},
			},
			want: []Service{
				svc("docker", "app", rt("a.com", "/api")),
				svc("file", "static", rt("a.com", "/")),
			},
			wantProbs: []string{"service app: host/path: route a.com/ is already served by service static"},
		},
		{
			name: "same host and path in one provider: the first by name keeps it",
			snaps: []Snapshot{{Services: []Service{
				svc("docker", "a", rt("", "/")),
				svc("docker", "b", rt("", "/"), rt("b.com", "/")),
			}}},
			want:      []Service{svc("docker", "a", rt("", "/")), svc("docker", "b", rt("b.com", "/"))},
			wantProbs: []string{"route (any host)/ is already served by service a"},
		},
		{
			name: "a route listed twice by one service is no conflict",
			snaps: []Snapshot{{Services: []Service{
				svc("file", "web", rt("a.com", "/"), rt("a.com", "/")),
			}}},
			want: []Service{svc("file", "web", rt("a.com", "/"))},
		},
		{
			name: "problems of the providers come first, in provider order",
			snaps: []Snapshot{
				{Problems: []Problem{{Provider: "docker", Source: "c1", Message: "p1"}},
					Services: []Service{svc("docker", "x", rt("", "/"))}},
				{Problems: []Problem{{Provider: "file", Message: "p2"}},
					Services: []Service{svc("file", "x")}},
			},
			want:      []Service{svc("docker", "x", rt("", "/"))},
			wantProbs: []string{"c1: p1", "p2", "service x: service name is already defined"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ptrs []*Snapshot
			for i := range tt.snaps {
				ptrs = append(ptrs, &tt.snaps[i])
			}
			got := Merge(ptrs...)
			if !slices.EqualFunc(got.Services, tt.want, Service.Equal) {
				t.Errorf("services:\n got %+v\nwant %+v", got.Services, tt.want)
			}
			if len(got.Problems) != len(tt.wantProbs) {
				t.Fatalf("problems = %v, want %d", got.Problems, len(tt.wantProbs))
			}
			for i, p := range got.Problems {
				if !strings.Contains(p.Error(), tt.wantProbs[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, p.Error(), tt.wantProbs[i])
				}
			}
		})
	}
}

// TestMergeLeavesInputsAlone checks that Merge does not write to its inputs:
// the Merger keeps them, and snapshots applied earlier share their arrays.
func TestMergeLeavesInputsAlone(t *testing.T) {
	in := Snapshot{Services: []Service{
		{Name: "a", Provider: "p",
			Routes:    []Route{rt("b.com", "/"), rt("a.com", "/"), rt("a.com", "/")},
			Endpoints: []Endpoint{{ID: "2"}, {ID: "1"}}},
		{Name: "b", Provider: "p", Routes: []Route{rt("c.com", "/"), rt("a.com", "/")}},
	}}
	before := deepCopy(in)
	got := Merge(&in)
	if !reflect.DeepEqual(in, before) {
		t.Errorf("Merge changed its input:\n got %+v\nwant %+v", in, before)
	}
	want := []Service{
		{Name: "a", Provider: "p", Routes: []Route{rt("a.com", "/"), rt("b.com", "/")},
			Endpoints: []Endpoint{{ID: "1"}, {ID: "2"}}},
		{Name: "b", Provider: "p", Routes: []Route{rt("c.com", "/")}},
	}
	if !slices.EqualFunc(got.Services, want, Service.Equal) || len(got.Problems) != 1 {
		t.Errorf("Merge = %+v, want services %+v and one problem", got, want)
	}
}

func deepCopy(s Snapshot) Snapshot {
	out := Snapshot{Problems: slices.Clone(s.Problems)}
	for _, v := range s.Services {
		v.Routes, v.Endpoints = slices.Clone(v.Routes), slices.Clone(v.Endpoints)
		out.Services = append(out.Services, v)
	}
	return out
}

func TestDropRouteConflicts(t *testing.T) {
	services := []Service{
		svc("file", "x", rt("a.com", "/"), rt("b.com", "/")),
		svc("file", "y", rt("b.com", "/"), rt("c.com", "/"), rt("a.com", "/")),
		svc("file", "z", rt("a.com", "/")),
		svc("file", "w", rt("c.com", "/x")),
	}
	yRoutes := services[1].Routes
	yBefore := slices.Clone(yRoutes)
	prior := []Problem{{Message: "earlier"}}
	got, problems := DropRouteConflicts(services, prior)
	want := [][]Route{
		{rt("a.com", "/"), rt("b.com", "/")},
		{rt("c.com", "/")},
		{},
		{rt("c.com", "/x")},
	}
	for i := range want {
		if !slices.Equal(got[i].Routes, want[i]) {
			t.Errorf("service %s routes = %v, want %v", got[i].Name, got[i].Routes, want[i])
		}
	}
	if !slices.Equal(yRoutes, yBefore) {
		t.Errorf("the routes array of the input was changed: %v", yRoutes)
	}
	wantProbs := []string{
		"earlier",
		"service y: host/path: route b.com/ is already served by service x; this route is ignored",
		"service y: host/path: route a.com/ is already served by service x; this route is ignored",
		"service z: host/path: route a.com/ is already served by service x; this route is ignored",
	}
	var gotProbs []string
	for _, p := range problems {
		gotProbs = append(gotProbs, p.Error())
	}
	if !slices.Equal(gotProbs, wantProbs) {
		t.Errorf("problems:\n got %q\nwant %q", gotProbs, wantProbs)
	}
	if problems[1].Provider != "file" {
		t.Errorf("problem provider = %q, want file", problems[1].Provider)
	}
}

// runner runs a Merger whose apply hands each snapshot to the test and
// then waits until the test releases it, so the test decides when the
// Merger may merge again.
type runner struct {
	t       *testing.T
	m       *Merger
	applied chan Snapshot
	release chan struct{}
	done    chan error
	cancel  context.CancelFunc
}

func startMerger(t *testing.T, cfg MergerConfig) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{
		t: t, m: NewMerger(cfg), cancel: cancel,
		applied: make(chan Snapshot), release: make(chan struct{}), done: make(chan error, 1),
	}
	go func() {
		r.done <- r.m.Run(ctx, func(s Snapshot) {
			select {
			case r.applied <- s:
			case <-ctx.Done():
				return
			}
			select {
			case <-r.release:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := r.wait(); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	return r
}

// next returns the next applied snapshot; apply stays blocked until
// the test calls r.proceed.
func (r *runner) next() Snapshot {
	r.t.Helper()
	select {
	case s := <-r.applied:
		return s
	case <-time.After(timeout):
		r.t.Fatal("no snapshot applied")
		return Snapshot{}
	}
}

// proceed lets the blocked apply return.
func (r *runner) proceed() {
	r.t.Helper()
	select {
	case r.release <- struct{}{}:
	case <-time.After(timeout):
		r.t.Fatal("apply is not waiting")
	}
}

func (r *runner) wait() error {
	select {
	case err := <-r.done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("Run did not return")
	}
}

func snapN(provider string, n int) Snapshot {
	return Snapshot{Services: []Service{svc(provider, fmt.Sprintf("%s-%d", provider, n), rt("", "/"+provider))}}
}

func TestMergerCoalesces(t *testing.T) {
	r := startMerger(t, MergerConfig{Providers: []string{"p"}})
	sink := r.m.Sink("p")
	sink.Update(snapN("p", 1))
	if got := r.next(); !got.Equal(snapN("p", 1)) {
		t.Fatalf("first applied = %+v", got)
	}
	// Run is inside apply: a burst of updates leads to one merge of the newest.
	for i := 2; i <= 100; i++ {
		sink.Update(snapN("p", i))
	}
	r.proceed()
	if got := r.next(); !got.Equal(snapN("p", 100)) {
		t.Fatalf("after a burst applied %+v, want the newest (100)", got)
	}
	r.proceed()
	// An equal snapshot is not applied again: the next apply is 101.
	sink.Update(snapN("p", 100))
	sink.Update(snapN("p", 101))
	if got := r.next(); !got.Equal(snapN("p", 101)) {
		t.Fatalf("applied %+v, want 101 (100 again must be dropped)", got)
	}
	r.proceed()
}

func TestMergerSortsUpdates(t *testing.T) {
	r := startMerger(t, MergerConfig{Providers: []string{"p"}})
	r.m.Sink("p").Update(Snapshot{Services: []Service{
		svc("p", "b", rt("z.com", "/"), rt("a.com", "/")), svc("p", "a"),
	}})
	got := r.next()
	r.proceed()
	want := Snapshot{Services: []Service{svc("p", "a"), svc("p", "b", rt("a.com", "/"), rt("z.com", "/"))}}
	if !got.Equal(want) {
		t.Errorf("applied %+v, want %+v", got, want)
	}
}

func TestMergerReady(t *testing.T) {
	r := startMerger(t, MergerConfig{Providers: []string{"a", "b"}})
	a, b := r.m.Sink("a"), r.m.Sink("b")
	if r.m.Ready() {
		t.Fatal("ready before any report")
	}
	a.Update(snapN("a", 1))
	if got := r.next(); !got.Equal(snapN("a", 1)) {
		t.Fatalf("partial state applied = %+v, want a's snapshot", got)
	}
	r.proceed()
	b.Fail(errors.New("broken"))
	a.Update(snapN("a", 2))
	if got := r.next(); !got.Equal(snapN("a", 2)) {
		t.Fatalf("applied %+v, want a's second snapshot", got)
	}
	if r.m.Ready() {
		t.Fatal("ready although b has only failed")
	}
	r.proceed()
	b.Update(snapN("b", 1))
	got := r.next()
	want := Merge(ptr(snapN("a", 2)), ptr(snapN("b", 1)))
	if !got.Equal(want) {
		t.Fatalf("applied %+v, want %+v", got, want)
	}
	r.proceed()
	// Ready is set after the complete merge was applied: by the time the
	// next apply starts, it is true.
	a.Update(snapN("a", 3))
	r.next()
	if !r.m.Ready() {
		t.Error("not ready after every provider delivered a snapshot")
	}
	r.proceed()
}

func ptr(s Snapshot) *Snapshot { return &s }

func TestMergerIgnoresUnknownProvider(t *testing.T) {
	r := startMerger(t, MergerConfig{Providers: []string{"p"}})
	r.m.Sink("stranger").Update(snapN("stranger", 1))
	r.m.Sink("p").Update(snapN("p", 1))
	for {
		got := r.next()
		r.proceed()
		if len(got.Services) == 0 {
			continue // the merge after the stranger's update, if it ran alone
		}
		if !got.Equal(snapN("p", 1)) {
			t.Fatalf("applied %+v, want only p's snapshot", got)
		}
		return
	}
}

func TestMergerOnReport(t *testing.T) {
	type report struct {
		provider string
		err      error
	}
	var reports []report // OnReport runs on the caller of Update and Fail
	m := NewMerger(MergerConfig{
		Providers: []string{"a", "b"},
		OnReport:  func(p string, err error) { reports = append(reports, report{p, err}) },
	})
	bad := errors.New("bad file")
	m.Sink("a").Update(Snapshot{})
	m.Sink("b").Fail(bad)
	m.Sink("b").Update(Snapshot{})
	want := []report{{"a", nil}, {"b", bad}, {"b", nil}}
	if !slices.Equal(reports, want) {
		t.Errorf("reports = %v, want %v", reports, want)
	}
}

func TestMergerRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := NewMerger(MergerConfig{Providers: []string{"p"}})
	if err := m.Run(ctx, func(Snapshot) { t.Error("apply called") }); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

func TestTCPServicesClaimPortsNotRoutes(t *testing.T) {
	tcp := func(name string, port int) Service {
		return Service{Name: name, Provider: "file", Routes: []Route{{Path: "/"}},
			Options: Options{Protocol: TCP, TCP: TCPOptions{Listen: port}}}
	}
	web := Service{Name: "web", Provider: "file", Routes: []Route{{Path: "/"}}}
	services, problems := DropRouteConflicts([]Service{tcp("db", 5432), tcp("mq", 5672), web, tcp("db2", 5432)}, nil)
	if len(problems) != 1 || problems[0].Key != "tcp.listen" || !strings.Contains(problems[0].Message, "service db") {
		t.Fatalf("problems %v, want one: db2's port is db's", problems)
	}
	if services[3].Options.TCP.Listen != 0 || services[0].Options.TCP.Listen != 5432 {
		t.Errorf("ports %d %d, want db's kept and db2's dropped", services[0].Options.TCP.Listen, services[3].Options.TCP.Listen)
	}
	if len(services[2].Routes) != 1 {
		t.Errorf("the HTTP catch-all lost its route to a TCP service")
	}
}

// BenchmarkMerge merges the snapshot of a file of 1,000 services of 10
// endpoints, as the Merger does on every change of the file.
func BenchmarkMerge(b *testing.B) {
	var s Snapshot
	for i := range 1000 {
		v := Service{Name: fmt.Sprintf("svc-%04d", i), Provider: "file",
			Routes: []Route{rt(fmt.Sprintf("svc-%04d.test", i), "/")}}
		for j := range 10 {
			addr := fmt.Sprintf("127.0.0.1:%d", 10000+i*10+j)
			v.Endpoints = append(v.Endpoints, Endpoint{ID: addr, Name: addr, Address: addr, Weight: 1})
		}
		s.Services = append(s.Services, v)
	}
	s.Sort()
	b.ReportAllocs()
	for b.Loop() {
		if got := Merge(&s); len(got.Services) != len(s.Services) {
			b.Fatalf("%d services merged, want %d", len(got.Services), len(s.Services))
		}
	}
}
