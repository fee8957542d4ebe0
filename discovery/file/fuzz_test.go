package file

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// fuzzSeeds are the seeds of FuzzParse, and inputs of the differential
// tests of the reparser.
var fuzzSeeds = []string{
	example, invalid, "", "services: {}\n", "services:\n  a: &x {routes: {b: *x}}\n",
	"services:\n  a: {host: [a.com, b.com], backends: [a:1, {address: b:2, weight: 3}]}\n  b: {}\n",
	"services:\n  a: {routes: {x: {host: x.com, balance: p2c}, y: {path: /y}}}\n",
}

// FuzzParse checks that Parse never panics, that a rejected file yields
// only located problems, and that an accepted one is a consistent snapshot.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := Parse("f.yaml", data)
		again, againErr := Parse("f.yaml", data)
		if !reflect.DeepEqual(snap, again) || (err == nil) != (againErr == nil) ||
			err != nil && err.Error() != againErr.Error() {
			t.Fatal("Parse is not deterministic")
		}
		if err != nil {
			checkProblems(t, err, snap)
			return
		}
		checkSnapshot(t, snap)
	})
}

func checkProblems(t *testing.T, err error, snap discovery.Snapshot) {
	t.Helper()
	if len(snap.Services) != 0 || len(snap.Problems) != 0 {
		t.Fatalf("rejected file has a snapshot: %+v", snap)
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) == 0 {
		t.Fatalf("error %v does not join problems", err)
	}
	for _, e := range j.Unwrap() {
		var p discovery.Problem
		if !errors.As(e, &p) || !strings.HasPrefix(p.Source, "f.yaml") || p.Message == "" {
			t.Fatalf("problem %#v does not name the file or has no message", e)
		}
	}
}

func checkSnapshot(t *testing.T, snap discovery.Snapshot) {
	t.Helper()
	owner := map[discovery.Route]string{}
	for i, svc := range snap.Services {
		if _, err := discovery.ParseServiceName(svc.Name); err != nil || svc.Provider != "file" {
			t.Fatalf("service %q of provider %q", svc.Name, svc.Provider)
		}
		if i > 0 && snap.Services[i-1].Name >= svc.Name {
			t.Fatalf("services not sorted or not unique: %q, %q", snap.Services[i-1].Name, svc.Name)
		}
		if len(svc.Routes) == 0 {
			t.Fatalf("service %q has no route", svc.Name)
		}
		for _, r := range svc.Routes {
			if prev, ok := owner[r]; ok {
				t.Fatalf("route %v in services %q and %q", r, prev, svc.Name)
			}
			owner[r] = svc.Name
			if p, err := discovery.ParsePath(r.Path); err != nil || p != r.Path {
				t.Fatalf("service %q: bad path %q", svc.Name, r.Path)
			}
		}
		ids := map[string]bool{}
		for _, ep := range svc.Endpoints {
			addr, err := parseAddress(ep.Address)
			if err != nil || addr != ep.Address || ep.Name != addr || ids[ep.ID] ||
				ep.ID != "file:"+svc.Name+"/"+addr || ep.Weight < 1 || ep.Weight > 1000 {
				t.Fatalf("service %q: bad endpoint %+v", svc.Name, ep)
			}
			ids[ep.ID] = true
		}
	}
}

// FuzzReparse checks that the reparser returns what Parse returns for a
// file, another version of it and the file again, each with the cache of
// the one before.
func FuzzReparse(f *testing.F) {
	svcs := generated(8)
	base := fileOf(svcs)
	edit := func(old, repl string) []byte { return []byte(strings.Replace(string(base), old, repl, 1)) }
	for _, edited := range [][]byte{
		edit("10.0.0.2:80", "10.0.0.3:80"),
		fileOf(append([]string{genService("top", 1)}, svcs...)),
		fileOf(svcs[1:]),
		edit("10.0.0.2:80", "10.0.0.2:0"),
		edit("svc-0002:", "svc-0001:"),
		edit("svc-0001:", "renamed:"),
		fileOf(append(slices.Clone(svcs), "  thief: {host: svc-0003.test}\n")),
		fileOf(append(slices.Clone(svcs), "  \"quoted\": {}\n")),
		edit("    path: /p1\n", "    path: /p1\n# comment\n\n"),
	} {
		f.Add(base, edited)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), base)
	}
	f.Fuzz(func(t *testing.T, base, edited []byte) {
		r := &reparser{}
		for _, data := range [][]byte{base, edited, base} {
			checkReparse(t, r, data)
		}
	})
}
