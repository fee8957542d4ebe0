package balancer

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
)

func TestHostOnly(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.1:5678", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"host:80", "host"},
		{"@", "@"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := hostOnly(tt.addr); got != tt.want {
			t.Errorf("hostOnly(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// keyedPick picks for key with a HashSource or HashHeader policy.
func keyedPick(p Policy, kind Kind, key string, tried Tried) int {
	if kind == HashSource {
		return p.Pick(&http.Request{RemoteAddr: key + ":1234"}, tried)
	}
	return p.Pick(request("", key, ""), tried)
}

func TestHashStable(t *testing.T) {
	for _, kind := range []Kind{HashSource, HashHeader} {
		for _, weights := range [][]int{ones(5), {1, 2, 3, 4, 5}} {
			t.Run(fmt.Sprint(kind, weights), func(t *testing.T) {
				_, bs := newBackends(weights...)
				p := mustNew(Config{Kind: kind, Name: "X-User", Rand: seqRand(1)}, bs)
				q := mustNew(Config{Kind: kind, Name: "X-User", Rand: seqRand(2)}, bs)
				for k := range 200 {
					key := fmt.Sprintf("10.0.%d.%d", k/256, k%256)
					first := keyedPick(p, kind, key, 0)
					for range 3 {
						if got := keyedPick(p, kind, key, 0); got != first {
							t.Fatalf("key %s: picked %d then %d", key, first, got)
						}
					}
					if got := keyedPick(q, kind, key, 0); got != first {
						t.Fatalf("key %s: rebuilt policy picked %d, first %d", key, got, first)
					}
				}
			})
		}
	}
}

func TestHashSourceIgnoresPortAndForwardedFor(t *testing.T) {
	_, bs := newBackends(ones(16)...)
	p, _ := NewHashSource(bs, nil)
	want := p.Pick(&http.Request{RemoteAddr: "198.51.100.7:1000"}, 0)
	for port := range 50 {
		r := &http.Request{RemoteAddr: fmt.Sprintf("198.51.100.7:%d", 2000+port), Header: http.Header{}}
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", port))
		if got := p.Pick(r, 0); got != want {
			t.Fatalf("port %d: picked %d, want %d", 2000+port, got, want)
		}
	}
}

// TestHashRemovalOnlyMovesItsKeys checks rendezvous hashing's promise:
// when a backend leaves the list, goes down or is tried, only the keys it
// held move; every other key stays where it was.
func TestHashRemovalOnlyMovesItsKeys(t *testing.T) {
	const gone, keys = 2, 3000
	for _, weights := range [][]int{ones(6), {3, 1, 4, 1, 5, 9}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			tbs, bs := newBackends(weights...)
			full, _ := NewHashSource(bs, nil)
			smaller, _ := NewHashSource(slices.Delete(slices.Clone(bs), gone, gone+1), nil)
			down, _ := NewHashSource(bs, nil)
			moved := 0
			for k := range keys {
				key := fmt.Sprintf("10.1.%d.%d", k/256, k%256)
				before := keyedPick(full, HashSource, key, 0)
				removed := keyedPick(smaller, HashSource, key, 0)
				if removed >= gone {
					removed++ // index in the full list
				}
				tried := keyedPick(full, HashSource, key, Tried(0).Add(gone))
				if before == gone {
					moved++
				} else if removed != before || tried != before {
					t.Fatalf("key %s moved from %d (removed: %d, tried: %d)", key, before, removed, tried)
				}
				if removed == gone || tried == gone {
					t.Fatalf("key %s still on backend %d", key, gone)
				}
				if tried != removed {
					t.Fatalf("key %s: removing backend %d gave %d, trying it gave %d", key, gone, removed, tried)
				}
				tbs[gone].down.Store(true)
				if got := keyedPick(down, HashSource, key, 0); got != removed {
					t.Fatalf("key %s: removing backend %d gave %d, marking it down gave %d", key, gone, removed, got)
				}
				tbs[gone].down.Store(false)
			}
			if moved == 0 {
				t.Fatalf("no key was on backend %d", gone)
			}
		})
	}
}

func TestHashWeightedShares(t *testing.T) {
	for _, kind := range []Kind{HashSource, HashHeader} {
		t.Run(kind.String(), func(t *testing.T) {
			weights := []int{1, 2, 3, 4}
			_, bs := newBackends(weights...)
			p := mustNew(Config{Kind: kind, Name: "X-User"}, bs)
			const n = 40_000
			got := make([]int, len(bs))
			for k := range n {
				got[keyedPick(p, kind, fmt.Sprintf("10.%d.%d.%d", k>>16, k>>8&255, k&255), 0)]++
			}
			for i, w := range weights {
				if d := math.Abs(float64(got[i])/n - float64(w)/10); d > 0.02 {
					t.Errorf("backend %d share %.3f, want %.3f±0.02: %v", i, float64(got[i])/n, float64(w)/10, got)
				}
			}
		})
	}
}

func TestHashFallsBackToRoundRobin(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		r    *http.Request
	}{
		{"source, nil request", HashSource, nil},
		{"source, no address", HashSource, &http.Request{}},
		{"header, nil request", HashHeader, nil},
		{"header missing", HashHeader, request("192.0.2.1:1", "", "")},
		{"header empty", HashHeader, &http.Request{Header: http.Header{"X-User": {""}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, bs := newBackends(5, 1, 1)
			p := mustNew(Config{Kind: tt.kind, Name: "x-user", Rand: zeroRand}, bs)
			var got []int
			for range 7 {
				got = append(got, p.Pick(tt.r, 0))
			}
			if want := []int{0, 0, 1, 0, 2, 0, 0}; !slices.Equal(got, want) {
				t.Errorf("picks = %v, want the round-robin order %v", got, want)
			}
		})
	}
}

func TestHashHeaderUsesValue(t *testing.T) {
	_, bs := newBackends(ones(32)...)
	p := mustNew(Config{Kind: HashHeader, Name: "x-user"}, bs) // name canonicalised
	seen := map[int]bool{}
	for u := range 200 {
		seen[p.Pick(request("192.0.2.1:1", fmt.Sprint("user", u), ""), 0)] = true
	}
	if len(seen) < 24 {
		t.Errorf("200 users reached only %d of 32 backends", len(seen))
	}
}
