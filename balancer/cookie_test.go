package balancer

import (
	"net/http"
	"slices"
	"testing"
)

func TestCookieValue(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		want   string
		wantOK bool
	}{
		{"none", nil, "", false},
		{"only", []string{"sticky=b1"}, "b1", true},
		{"among others", []string{"a=1; sticky=b2; c=3"}, "b2", true},
		{"no space", []string{"a=1;sticky=b2"}, "b2", true},
		{"spaces and tabs", []string{"a=1;  \tsticky = b2 \t; c=3"}, "b2", true},
		{"quoted", []string{`sticky="b3"`}, "b3", true},
		{"empty", []string{"sticky="}, "", true},
		{"first wins", []string{"sticky=b1; sticky=b2"}, "b1", true},
		{"second line", []string{"a=1", "sticky=b4"}, "b4", true},
		{"prefix is not a match", []string{"xsticky=b1; stickyx=b2"}, "", false},
		{"case matters", []string{"Sticky=b1"}, "", false},
		{"pair without =", []string{"sticky; a=1"}, "", false},
		{"value with =", []string{"sticky=a=b"}, "a=b", true},
		{"trailing ;", []string{"sticky=b5;"}, "b5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.lines {
				h.Add("Cookie", l)
			}
			got, ok := cookieValue(h, "sticky")
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("cookieValue(%q) = %q, %v, want %q, %v", tt.lines, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCookieValueOfRequest(t *testing.T) {
	if v, ok := CookieValue(nil, "sticky"); ok || v != "" {
		t.Errorf("CookieValue(nil) = %q, %v", v, ok)
	}
	r := request("192.0.2.1:1", "", "b1")
	if v, ok := CookieValue(r, "sticky"); !ok || v != "b1" {
		t.Errorf("CookieValue = %q, %v, want b1", v, ok)
	}
	if n := testing.AllocsPerRun(100, func() { CookieValue(r, "sticky") }); n != 0 {
		t.Errorf("CookieValue allocates %v times", n)
	}
}

func TestCookiePick(t *testing.T) {
	tests := []struct {
		name   string
		cookie string
		down   []int
		tried  Tried
		want   []int // seven picks; round robin (5, 1, 1) when the cookie misses
	}{
		{"hit", "b1", nil, 0, []int{1, 1, 1, 1, 1, 1, 1}},
		{"hit quoted", `"b2"`, nil, 0, []int{2, 2, 2, 2, 2, 2, 2}},
		{"no cookie", "", nil, 0, []int{0, 0, 1, 0, 2, 0, 0}},
		{"unknown key", "b9", nil, 0, []int{0, 0, 1, 0, 2, 0, 0}},
		{"backend down", "b1", []int{1}, 0, []int{0, 0, 0, 2, 0, 0, 0}},
		{"backend tried", "b2", nil, Tried(0).Add(2), []int{0, 0, 1, 0, 0, 0, 0}},
		{"all down", "b0", []int{0, 1, 2}, 0, []int{-1, -1, -1, -1, -1, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbs, bs := newBackends(5, 1, 1)
			for _, i := range tt.down {
				tbs[i].down.Store(true)
			}
			p := mustNew(Config{Kind: Cookie, Name: "sticky", Rand: zeroRand}, bs)
			var got []int
			for range len(tt.want) {
				got = append(got, p.Pick(request("192.0.2.1:1", "", tt.cookie), tt.tried))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("picks = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCookieSticky(t *testing.T) {
	_, bs := newBackends(1, 1)
	p, err := NewCookie("sticky", bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := p.(Sticky)
	if !ok || s.CookieName() != "sticky" {
		t.Fatalf("cookie policy: Sticky %v, name %q", ok, s.CookieName())
	}
	if got := p.Pick(nil, 0); got < 0 {
		t.Errorf("Pick(nil) = %d, want the round-robin fallback", got)
	}
	for _, cfg := range allKinds() {
		if _, ok := mustNew(cfg, bs).(Sticky); ok != (cfg.Kind == Cookie) {
			t.Errorf("%s: Sticky %v", cfg.Kind, ok)
		}
	}
}
