package balancer

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestTried(t *testing.T) {
	var tr Tried
	if tr.Has(0) || tr.Has(-1) {
		t.Fatal("zero Tried is not empty")
	}
	tr = tr.Add(-1).Add(3).Add(63)
	for i, want := range map[int]bool{-1: false, 0: false, 3: true, 63: true, 64: false, 67: true, 127: true} {
		if got := tr.Has(i); got != want {
			t.Errorf("Has(%d) = %v, want %v", i, got, want)
		}
	}
	if !Tried(0).Add(70).Has(70) {
		t.Error("Add(70) is not reported by Has(70): a retry could return to it")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{}, ""},
		{Config{Kind: P2C, Name: "ignored"}, ""},
		{Config{Kind: HashHeader, Name: "X-User"}, ""},
		{Config{Kind: HashHeader}, "Config.Name"},
		{Config{Kind: Cookie, Name: "bad name"}, "Config.Name"},
		{Config{Kind: Cookie + 1}, "Config.Kind"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: Validate() = %v, want error naming %q", tt.cfg, err, tt.wantErr)
		}
		if _, nerr := New(tt.cfg, nil); (nerr == nil) != (err == nil) {
			t.Errorf("%+v: New error %v, Validate error %v", tt.cfg, nerr, err)
		}
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	dup, bs := newBackends(1, 1, 1)
	dup[2].key = "b0"
	empty, es := newBackends(1, 1)
	empty[1].key = ""
	for _, cfg := range allKinds() {
		needsKeys := cfg.Kind == HashSource || cfg.Kind == HashHeader || cfg.Kind == Cookie
		for name, list := range map[string][]Backend{"duplicate": bs, "empty": es} {
			if _, err := New(cfg, list); (err != nil) != needsKeys {
				t.Errorf("%s with %s key: error %v", cfg.Kind, name, err)
			}
		}
	}
}

func TestKindString(t *testing.T) {
	for _, cfg := range allKinds() {
		if s := cfg.Kind.String(); strings.HasPrefix(s, "Kind(") {
			t.Errorf("Kind %d has no name", cfg.Kind)
		}
	}
	if s := (Cookie + 1).String(); s != "Kind(7)" {
		t.Errorf("unknown kind: %q", s)
	}
}

// TestNoneLeft checks every policy returns -1, and never an ineligible
// backend, when nothing or little is left.
func TestNoneLeft(t *testing.T) {
	r := request("192.0.2.1:1", "alice", "b1")
	tests := []struct {
		name    string
		weights []int
		down    []int
		tried   Tried
		want    int
	}{
		{"no backends", nil, nil, 0, -1},
		{"all down", []int{1, 2, 3}, []int{0, 1, 2}, 0, -1},
		{"all tried", []int{1, 2, 3}, nil, Tried(0).Add(0).Add(1).Add(2), -1},
		{"down or tried", []int{1, 2, 3}, []int{0, 2}, Tried(0).Add(1), -1},
		{"one left", []int{9, 1, 9}, []int{0}, Tried(0).Add(2), 1},
	}
	for _, cfg := range allKinds() {
		for _, tt := range tests {
			t.Run(fmt.Sprint(cfg.Kind, "/", tt.name), func(t *testing.T) {
				tbs, bs := newBackends(tt.weights...)
				for _, i := range tt.down {
					tbs[i].down.Store(true)
				}
				p := mustNew(cfg, bs)
				for _, req := range []*http.Request{r, nil} {
					for range 20 {
						if got := p.Pick(req, tt.tried); got != tt.want {
							t.Fatalf("Pick = %d, want %d", got, tt.want)
						}
					}
				}
			})
		}
	}
}

// TestManyBackends checks that services of more than 64 backends work and
// that a tried backend from 64 on is never picked again.
func TestManyBackends(t *testing.T) {
	r := request("192.0.2.1:1", "alice", "b70")
	for _, cfg := range allKinds() {
		t.Run(cfg.Kind.String(), func(t *testing.T) {
			_, bs := newBackends(ones(100)...)
			p := mustNew(cfg, bs)
			tried := Tried(0).Add(70)
			for range 500 {
				if got := p.Pick(r, tried); got < 0 || tried.Has(got) {
					t.Fatalf("Pick = %d with 70 tried", got)
				}
			}
		})
	}
}

// TestConcurrentPicks runs pickers against a goroutine that flips
// availability, for the race detector, and checks invariants that hold
// whatever the interleaving: a backend that is always down or tried is
// never picked, and with one always up, Pick never gives up.
func TestConcurrentPicks(t *testing.T) {
	for _, cfg := range allKinds() {
		t.Run(cfg.Kind.String(), func(t *testing.T) {
			tbs, bs := newBackends(1, 2, 3, 1, 2, 3, 1, 2)
			tbs[0].down.Store(true) // always down
			const tried, stable = 7, 6
			p := mustNew(cfg, bs)

			done := make(chan struct{})
			var flipper sync.WaitGroup
			flipper.Go(func() { flip(tbs[1:stable], done) })

			var pickers sync.WaitGroup
			errs := make(chan string, 8)
			for g := range 8 {
				pickers.Go(func() {
					r := request(fmt.Sprintf("192.0.2.%d:1", g), fmt.Sprint("user", g), fmt.Sprint("b", g))
					for n := range 2000 {
						tbs[n%8].inFlight.Add(1)
						i := p.Pick(r, Tried(0).Add(tried))
						tbs[n%8].inFlight.Add(-1)
						if i == 0 || i == tried || i < 0 || i >= len(bs) {
							errs <- fmt.Sprintf("goroutine %d: Pick = %d", g, i)
							return
						}
					}
				})
			}
			pickers.Wait()
			close(done)
			flipper.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
		})
	}
}

// flip toggles the availability of tbs until done is closed.
func flip(tbs []*testBackend, done <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-done:
			return
		default:
		}
		b := tbs[n%len(tbs)]
		b.down.Store(!b.down.Load())
		b.latency.Store(int64(n % 1000))
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	r := request("192.0.2.1:1234", "alice", "b3")
	miss := request("[2001:db8::1]:1234", "", "nobody")
	for _, cfg := range allKinds() {
		t.Run(cfg.Kind.String(), func(t *testing.T) {
			tbs, bs := newBackends(1, 2, 3, 4, 1, 2, 3, 4)
			tbs[2].down.Store(true)
			tbs[5].inFlight.Store(3)
			tbs[6].latency.Store(1e6)
			p := mustNew(cfg, bs)
			for _, req := range []*http.Request{r, miss, nil} {
				if n := testing.AllocsPerRun(1000, func() { p.Pick(req, Tried(0).Add(3)) }); n != 0 {
					t.Errorf("Pick allocates %v times", n)
				}
			}
		})
	}
}
