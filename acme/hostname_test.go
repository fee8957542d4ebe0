package acme

import (
	"strings"
	"testing"
)

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in, want string
		err      string // substring of the reason
	}{
		{in: "example.com", want: "example.com"},
		{in: "API.Example.COM", want: "api.example.com"},
		{in: " www.example.com. ", want: "www.example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "a-b.c-d.example", want: "a-b.c-d.example"},
		{in: "", err: "empty"},
		{in: ".", err: "empty"},
		{in: "*.example.com", err: "wildcard"},
		{in: "a.*.example.com", err: "wildcard"},
		{in: "127.0.0.1", err: "IP address"},
		{in: "::1", err: "IP address"},
		{in: "[::1]", err: "IP address"},
		{in: "under_score.example", err: "not a valid DNS name"},
		{in: "a..example", err: "not a valid DNS name"},
		{in: "a..", err: "empty label"},
		{in: "0\xbc0", err: "invalid UTF-8"},
		{in: "-lead.example", err: "not a valid DNS name"},
		{in: "host:8080", err: "not a valid DNS name"},
		{in: "a/b.example", err: "not a valid DNS name"},
		{in: strings.Repeat("a", 64) + ".example", err: "not a valid DNS name"},
	}
	for _, tt := range tests {
		got, err := normalizeHost(tt.in)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("normalizeHost(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("normalizeHost(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
		}
	}
}

// FuzzNormalizeHost checks that an accepted name is stable, lowercase
// ASCII, and usable as a file name as it is.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "*.x", "1.2.3.4", "a..b", "../x", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := normalizeHost(in)
		if err != nil {
			return
		}
		if again, err := normalizeHost(got); err != nil || again != got {
			t.Errorf("normalizeHost(%q) = %q, then %q, %v", in, got, again, err)
		}
		if got != strings.ToLower(got) || safeName(got) != got || got == "." || got == ".." {
			t.Errorf("normalizeHost(%q) = %q: not a lowercase safe file name", in, got)
		}
	})
}
