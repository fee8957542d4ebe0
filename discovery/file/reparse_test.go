package file

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cutoverproxy/cutover/discovery"
)

// checkReparse parses data with r and with Parse, and fails unless both
// return the same snapshot and the same error, problem by problem. It
// returns the error.
func checkReparse(t testing.TB, r *reparser, data []byte) error {
	t.Helper()
	got, gotErr := r.parse("f.yaml", data)
	want, wantErr := Parse("f.yaml", data)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reparser and Parse differ on\n%s\n got %+v\nwant %+v", data, got, want)
	}
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(gotErr, wantErr) {
		t.Fatalf("reparser and Parse differ on\n%s\n got error %v\nwant error %v", data, gotErr, wantErr)
	}
	return wantErr
}

// TestReparseInputs runs every input of the parse tests and the fuzz seeds
// through one reparser, so that each finds the cache of the one before,
// then through a new one, twice.
func TestReparseInputs(t *testing.T) {
	var inputs []string
	for _, tt := range validFiles {
		inputs = append(inputs, tt.yaml)
	}
	for _, tt := range invalidFiles {
		inputs = append(inputs, tt.yaml)
	}
	inputs = append(inputs, fuzzSeeds...)
	shared := &reparser{}
	for _, in := range inputs {
		checkReparse(t, shared, []byte(in))
		r := &reparser{}
		checkReparse(t, r, []byte(in))
		checkReparse(t, r, []byte(in))
	}
}

// TestReparseIsIncremental checks that inputs of the plain shape take the
// incremental path, and what it parses again.
func TestReparseIsIncremental(t *testing.T) {
	r := &reparser{}
	steps := []struct {
		yaml   string
		parsed int
	}{
		{example, 1},
		{example, 0},
		{"# head\nservices:  # all of them\n\n  web: {}\n# between\n  api: {host: a.com}\n", 2},
		{"services:\n  api: {host: a.com}\n  web: {}\n", 1}, // api's text is new: it lost its comment
		{"services:\n  web: {}\n  api: {host: a.com}\n", 0},
		{"services:\n  web: {}\n  api: {host: a.com}\n  web: {host: b.com}\n", 0}, // the name given twice is not parsed
		{"services:\n  web: {}\n  api: {host: a.com, port: 1}\n", 1},
		{"services:\n  web: {}\n  api: {host: a.com, port: 1}\n", 1}, // a service with problems is not kept
		{"services:\n", 0},
	}
	for i, s := range steps {
		checkReparse(t, r, []byte(s.yaml))
		if r.full || r.parsed != s.parsed {
			t.Errorf("step %d: full %v, parsed %d services, want the incremental path and %d", i, r.full, r.parsed, s.parsed)
		}
	}
}

// genService is the text of one generated service; i varies its keys.
func genService(name string, i int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  %s:\n", name)
	switch i % 5 {
	case 0:
		fmt.Fprintf(&sb, "    host: %s.test\n    backends: [10.0.%d.1:80, 10.0.%d.2:80]\n", name, i%250, i%250)
	case 1:
		fmt.Fprintf(&sb, "    host: [%s.test, www.%s.test]\n    path: /p%d\n    balance: leastconn\n", name, name, i)
		fmt.Fprintf(&sb, "    backends:\n      - 10.1.%d.1:8080\n      - {address: 10.1.%d.2:8080, weight: %d}\n", i%250, i%250, i%7+1)
	case 2:
		fmt.Fprintf(&sb, "    # %s answers on two hosts\n    routes:\n      api: {host: api.%s.test, path: /v1}\n", name, name)
		fmt.Fprintf(&sb, "      web:\n        host: %s.test\n    health:\n      path: /healthz\n      rise: 3\n\n", name)
	case 3:
		fmt.Fprintf(&sb, "    host: %s.test\n    health.path: /up\n    protocol: h2c\n    backends: [\"[::1]:%d\"]\n", name, 1000+i)
	default:
		fmt.Fprintf(&sb, "    protocol: tcp\n    tcp.listen: %d\n    backends:\n    - 10.2.%d.1:5432\n", 20000+i, i%250)
	}
	return sb.String()
}

// generated is a file of n generated services, as a list of their texts.
func generated(n int) []string {
	svcs := make([]string, n)
	for i := range svcs {
		svcs[i] = genService(fmt.Sprintf("svc-%04d", i), i)
	}
	return svcs
}

func fileOf(svcs []string) []byte {
	return []byte("# generated\nservices:\n" + strings.Join(svcs, ""))
}

// edits is a generated file that a test edits, and the reparser that reads
// each version.
type edits struct {
	t    *testing.T
	svcs []string
	r    reparser
}

func newEdits(t *testing.T, n int) *edits {
	e := &edits{t: t, svcs: generated(n)}
	e.valid("first read", n)
	e.valid("no change", 0)
	return e
}

// valid and invalid check the current version against Parse, and that the
// reparser took the incremental path and parsed that many services.
func (e *edits) valid(name string, parsed int)   { e.t.Helper(); e.check(name, parsed, true) }
func (e *edits) invalid(name string, parsed int) { e.t.Helper(); e.check(name, parsed, false) }

func (e *edits) check(name string, parsed int, valid bool) {
	e.t.Helper()
	data := fileOf(e.svcs)
	err := checkReparse(e.t, &e.r, data)
	if e.r.full || e.r.parsed != parsed {
		e.t.Fatalf("%s: full %v, parsed %d services, want the incremental path and %d", name, e.r.full, e.r.parsed, parsed)
	}
	if (err == nil) != valid {
		e.t.Fatalf("%s: want the file valid: %v, but Parse says %v", name, valid, err)
	}
}

// find returns the index of the service named name.
func (e *edits) find(name string) int {
	return slices.IndexFunc(e.svcs, func(s string) bool { return strings.HasPrefix(s, "  "+name+":") })
}

// edit replaces old with repl in the text of the service named name.
func (e *edits) edit(name, old, repl string) {
	e.t.Helper()
	i := e.find(name)
	if i < 0 || !strings.Contains(e.svcs[i], old) {
		e.t.Fatalf("no %q in service %s", old, name)
	}
	e.svcs[i] = strings.Replace(e.svcs[i], old, repl, 1)
}

// TestReparseEdits checks a sequence of edits to one service at a time in
// a large file, each against a fresh Parse, and that each costs the parse
// of the services it touched.
func TestReparseEdits(t *testing.T) {
	e := newEdits(t, 200)
	e.edit("svc-0010", "10.0.10.2:80", "10.0.10.3:80")
	e.valid("a backend changed", 1)
	e.svcs = slices.Insert(e.svcs, 0, genService("new-top", 0))
	e.valid("a service added above the others", 1)
	e.svcs = slices.Delete(e.svcs, 150, 151)
	e.valid("a service removed", 0)
	e.edit("svc-0030", "10.0.30.1:80", "10.0.30.1:0")
	e.invalid("a service made invalid", 1)
	e.invalid("the same invalid file", 1)
	e.edit("svc-0030", "10.0.30.1:0", "10.0.30.1:80")
	e.valid("the service made valid again", 1) // the cache keeps the last version only
	i := e.find("svc-0031") + 1
	e.svcs = slices.Insert(e.svcs, i, "  svc-0031b: {}\n")
	e.valid("a service added", 1)
	e.svcs[i] = "    svc-0031b: 1\n"
	e.invalid("the service indented into the one above", 1)
	e.svcs = slices.Delete(e.svcs, i, i+1)
	e.valid("that key removed", 1)
	e.edit("svc-0032", "    routes:\n", "    routes:\n      api: {host: again.test}\n")
	e.invalid("a route given twice", 1)
	e.edit("svc-0032", "      api: {host: again.test}\n", "")
	e.valid("that route removed", 1)
	e.edit("svc-0039", "svc-0039:", "renamed:")
	e.valid("a service renamed", 1)
	e.svcs[50], e.svcs[60] = e.svcs[60], e.svcs[50]
	e.valid("two services swapped", 0)
	e.svcs[70] = "# a comment above\n\n" + e.svcs[70]
	e.valid("comments and blank lines added", 1)
	e.svcs[80] = strings.Replace(e.svcs[80], "\n", " # trailing\n", 1)
	e.valid("a comment after a key", 1)
}

// TestReparseEditsAcross checks edits that concern a cached service and a
// new one: a name given twice, a route or a port that both claim.
func TestReparseEditsAcross(t *testing.T) {
	e := newEdits(t, 200)
	e.svcs = slices.Insert(e.svcs, 160, e.svcs[5])
	e.invalid("a name given twice, same text", 0)
	e.svcs[160] = genService("svc-0004", 5)
	e.invalid("a name given twice, other text", 0)
	e.svcs = slices.Delete(e.svcs, 4, 5)
	e.valid("the first of the two removed", 1)
	e.svcs = append(e.svcs, "  thief:\n    host: svc-0003.test\n")
	e.invalid("a new service claims the route of a cached one", 1)
	e.svcs = slices.Insert(e.svcs, 1, "  early-thief: {host: svc-0008.test}\n")
	e.invalid("a new service above claims the route of a cached one", 1)
	e.svcs = slices.Delete(e.svcs[:len(e.svcs)-1], 1, 2)
	e.valid("both removed", 0)
	e.svcs = append(e.svcs, "  port-thief: {protocol: tcp, tcp.listen: 20009}\n")
	e.invalid("a new service claims a cached one's port", 1)
	e.svcs[len(e.svcs)-1] = "  port-thief: {host: svc-0003.test, tcp.listen: 20009}\n"
	e.invalid("a new service claims a cached one's port and route", 1)
	e.svcs[len(e.svcs)-1] = "  catch-all: {}\n  catch-all-too:\n"
	e.invalid("two new catch-alls", 2)
}

// TestReparseFallsBack checks edits that leave the plain shape: the
// reparser parses the whole file, and resumes from its cache after.
func TestReparseFallsBack(t *testing.T) {
	svcs := generated(50)
	base := fileOf(svcs)
	edits := []string{
		"services:\n" + strings.Join(svcs, "") + "other: 1\n",
		"services:\n" + strings.Join(svcs, "") + "---\nservices: {}\n",
		"%YAML 1.2\n---\nservices:\n" + strings.Join(svcs, ""),
		strings.Replace(string(base), "    host: svc-0000.test", "    host: &h svc-0000.test", 1),
		strings.Replace(string(base), "  svc-0003:\n", "  svc-0003:\n    <<: {path: /x}\n", 1),
		strings.Replace(string(base), "    protocol: h2c\n", "    protocol: h2c\n    x: |\n      text\n", 1),
		strings.Replace(string(base), "    path: /p1\n", "    path: \"/p1\n  svc-9999: x\"\n", 1),
		strings.Replace(string(base), "    path: /p1\n", "\tpath: /p1\n", 1),
		strings.Replace(string(base), "\n", "\r\n", -1),
		strings.Replace(string(base), "svc-0001:", "\"svc-0001\":", 1),
		strings.Replace(string(base), "svc-0001:", "svc-0001 :", 1),
		strings.Replace(string(base), "  svc-0001:", " svc-0001:", 1),
		strings.Replace(string(base), "  svc-0001:", "  ? svc-0001\n  :", 1),
		strings.Replace(string(base), "  svc-0001:", "  - svc-0001:", 1),
		strings.Replace(string(base), "[10.0.0.1:80,", "[10.0.0.1:80,\n  x: 10.0.0.1:81,", 1),
		"services: {a: {}}\n",
		"services:\n  a: {}\n...\n",
		"\xef\xbb\xbfservices:\n  a: {}\n",
		"services:\n  a: {host: \"a\u2028b.com\"}\n",
		"services:\n  a: {host: \"a\u0085b.com\"}\n",
		"# \xff\nservices:\n  a: {}\n",
		"# only a comment\n",
	}
	r := &reparser{}
	for i, e := range edits {
		checkReparse(t, r, base)
		if r.full {
			t.Fatalf("edit %d: the base file fell back", i)
		}
		checkReparse(t, r, []byte(e))
		if !r.full {
			t.Errorf("edit %d took the incremental path:\n%s", i, e)
		}
	}
}

// TestReparseLarge checks the file of BenchmarkParse10k, and one change.
func TestReparseLarge(t *testing.T) {
	base := file10k()
	changed := []byte(strings.Replace(string(base), "127.0.0.1:15000,", "127.0.0.1:25000,", 1))
	r := &reparser{}
	for i, data := range [][]byte{base, changed, base} {
		checkReparse(t, r, data)
		if want := []int{1000, 1, 1}[i]; r.full || r.parsed != want {
			t.Errorf("step %d: full %v, parsed %d services, want the incremental path and %d", i, r.full, r.parsed, want)
		}
	}
}

// TestReparseKeepsCacheIntact checks that what the reparser returns and
// its cache stay as Parse has them when the snapshot goes through the
// Merger, which sorts it, and the next version reuses the cached service:
// they share the service's routes and endpoints, which are read-only.
func TestReparseKeepsCacheIntact(t *testing.T) {
	data := []byte("services:\n  a:\n    routes: {z: {host: z.com}, b: {host: b.com}}\n    backends: [b:1, a:1]\n")
	r := &reparser{}
	snap, err := r.parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	m := discovery.NewMerger(discovery.MergerConfig{})
	m.Sink("file").Update(snap)
	if !snap.Equal(want) {
		t.Errorf("the Merger changed the snapshot it was given:\n got %+v\nwant %+v", snap, want)
	}
	checkReparse(t, r, append(data, "  b: {}\n"...))
	if r.full || r.parsed != 1 {
		t.Fatalf("the second version took the full path (%v) or parsed %d services, want the cached a", r.full, r.parsed)
	}
}

func TestSplitServices(t *testing.T) {
	data := "# head\n\nservices: # c\n  # before\n  a: {}\n\n  b-1.x_y:\n    host: b.com\n# c\n    path: /b\n  c:"
	chunks, ok := splitServices([]byte(data))
	var got []string
	for _, c := range chunks {
		got = append(got, fmt.Sprintf("%s@%d:%q", c.name, c.line, c.text))
	}
	want := []string{
		`a@5:"  a: {}\n\n"`,
		`b-1.x_y@7:"  b-1.x_y:\n    host: b.com\n# c\n    path: /b\n"`,
		`c@11:"  c:"`,
	}
	if !ok || !slices.Equal(got, want) {
		t.Errorf("splitServices = %q, %v; want %q", got, ok, want)
	}
}

// TestReparseRandomEdits applies random line edits to a generated file,
// each to the version before, and checks every version against Parse.
func TestReparseRandomEdits(t *testing.T) {
	const n = 500
	incremental, valid := randomEdits(t, 1, n)
	t.Logf("%d versions of %d took the incremental path, %d were valid", incremental, n, valid)
	if incremental < n/3 || valid < n/10 {
		t.Errorf("want more of the versions to take the incremental path, and to be valid")
	}
}

// randomEdits makes n random line edits to a generated file, and checks
// each version against Parse. Lines come from the file itself and from a
// set made to break its shape; after a version out of shape, the next edit
// is to it, to the last version in shape or to the last valid one. It returns how
// many versions took the incremental path, and how many were valid.
func randomEdits(t *testing.T, seed uint64, n int) (incremental, valid int) {
	t.Helper()
	tricky := []string{
		"", "# comment", "  # comment", "  x: {}", "  web:", "  svc-0001: {host: svc-0002.test}", "    host: a.com",
		"    path: \"/a", "  b: c\"", "    x: &a {path: /}", "    y: *a", "    <<: {path: /}", "\tpath: /t",
		"    tcp.listen: 20004", "    backends: [", "      10.0.0.1:80]", "    - 10.0.0.1:80", "  - x", "services:",
		"---", "...", "other: 1", " odd: 1", "      web: {host: svc-0003.test}", "    health: |", "      text",
		"  \"q\": {}", "  ? k", "  : v", "  svc-0002:   # again", "    backends: [10.0.0.1:80, 10.0.0.1:80]",
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	lines := strings.Split(string(fileOf(generated(20))), "\n")
	good, lastValid := lines, lines // the last versions in shape, and valid
	r := &reparser{}
	for range n {
		lines = slices.Clone(lines)
		i := rng.IntN(len(lines))
		switch rng.IntN(6) {
		case 0:
			lines = slices.Delete(lines, i, i+1)
		case 1:
			lines = slices.Insert(lines, i, lines[rng.IntN(len(lines))])
		case 2:
			lines[i], lines[len(lines)-1-i] = lines[len(lines)-1-i], lines[i]
		case 3:
			lines[i] = strings.Replace(lines[i], "1", "2", 1)
		default:
			lines = slices.Insert(lines, i, tricky[rng.IntN(len(tricky))])
		}
		if len(lines) < 20 || len(lines) > 300 {
			lines = strings.Split(string(fileOf(generated(20))), "\n")
		}
		data := []byte(strings.Join(lines, "\n"))
		if checkReparse(t, r, data) == nil {
			valid++
			lastValid = lines
		}
		if !r.full {
			incremental++
			good = lines
		}
		switch rng.IntN(4) {
		case 0:
			lines = lastValid
		case 1:
			lines = good
		}
	}
	return incremental, valid
}
