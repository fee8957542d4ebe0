package discovery

import (
	"slices"
	"testing"
)

func TestSnapshotSortAndEqual(t *testing.T) {
	a := Snapshot{Services: []Service{
		{Name: "web", Routes: []Route{{Host: "b.com", Path: "/"}, {Host: "a.com", Path: "/x"}, {Host: "a.com", Path: "/"}, {Host: "b.com", Path: "/"}},
			Endpoints: []Endpoint{{ID: "2"}, {ID: "1"}}},
		{Name: "api"},
	}}
	b := Snapshot{Services: []Service{
		{Name: "api"},
		{Name: "web", Routes: []Route{{Host: "a.com", Path: "/"}, {Host: "a.com", Path: "/x"}, {Host: "b.com", Path: "/"}},
			Endpoints: []Endpoint{{ID: "1"}, {ID: "2"}}},
	}}
	if a.Equal(b) {
		t.Fatal("unsorted snapshot equals sorted one")
	}
	a.Sort()
	if !a.Equal(b) {
		t.Fatalf("after Sort:\n got %+v\nwant %+v", a, b)
	}
	if _, ok := a.Service("web"); !ok {
		t.Error(`Service("web") not found`)
	}
	if _, ok := a.Service("nope"); ok {
		t.Error(`Service("nope") found`)
	}
	if !(Snapshot{}).Equal(Snapshot{Services: []Service{}}) {
		t.Error("nil and empty service lists differ")
	}
	c := b
	c.Problems = []Problem{{Message: "x"}}
	if b.Equal(c) {
		t.Error("snapshots with different problems are equal")
	}
	for _, change := range []func(*Service){
		func(s *Service) { s.Provider = "file" },
		func(s *Service) { s.Options.Balance.Policy = P2C },
		func(s *Service) { s.Routes = nil },
		func(s *Service) { s.Endpoints = []Endpoint{{ID: "1"}, {ID: "2", Weight: 3}} },
	} {
		svc := b.Services[1]
		change(&svc)
		if svc.Equal(b.Services[1]) {
			t.Errorf("changed service %+v equals original", svc)
		}
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Message: "m"}, "m"},
		{Problem{Source: "web", Message: "m"}, "web: m"},
		{Problem{Key: "cutover.port", Message: "m"}, "cutover.port: m"},
		{Problem{Source: "f.yaml:3", Key: "services.web.port", Message: "m"}, "f.yaml:3: services.web.port: m"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for s, want := range map[EndpointState]string{Ready: "ready", Starting: "starting", Unhealthy: "unhealthy", Draining: "draining", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("EndpointState(%d).String() = %q, want %q", s, s.String(), want)
		}
	}
	if got := (Route{Path: "/a"}).String(); got != "(any host)/a" {
		t.Errorf("catch-all route String() = %q", got)
	}
	if got := (Route{Host: "a.com", Path: "/"}).String(); got != "a.com/" {
		t.Errorf("route String() = %q", got)
	}
}

// TestSortWritesNoRoutesOrEndpoints checks that Sort leaves the routes and
// endpoints it was given as they were, sorting those out of order on
// copies: providers share them between snapshots, and other goroutines
// read the snapshots before.
func TestSortWritesNoRoutesOrEndpoints(t *testing.T) {
	routes := []Route{{Host: "b.com"}, {Host: "a.com"}, {Host: "a.com"}}
	endpoints := []Endpoint{{ID: "2"}, {ID: "1"}}
	sorted := []Route{{Host: "a.com"}, {Host: "b.com"}}
	kept := []Endpoint{{ID: "1"}, {ID: "2"}}
	s := Snapshot{Services: []Service{{Name: "b", Routes: routes, Endpoints: endpoints}, {Name: "a", Routes: sorted, Endpoints: kept}}}
	s.Sort()
	if routes[0].Host != "b.com" || endpoints[0].ID != "2" {
		t.Errorf("Sort wrote the routes or endpoints it was given: %+v, %+v", routes, endpoints)
	}
	b, _ := s.Service("b")
	if !slices.Equal(b.Routes, sorted) || !slices.Equal(b.Endpoints, kept) {
		t.Errorf("after Sort, service b has %+v and %+v, want %+v and %+v", b.Routes, b.Endpoints, sorted, kept)
	}
	if a, _ := s.Service("a"); &a.Routes[0] != &sorted[0] || &a.Endpoints[0] != &kept[0] {
		t.Error("Sort copied routes or endpoints already in order")
	}
}
