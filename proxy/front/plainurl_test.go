package front

import (
	"net/url"
	"reflect"
	"testing"
)

// TestPlainURLReadsAsParseRequestURI holds plainURL to net/url: for a
// target with any visible byte in its path, its query or at its ends, it
// either declines (net/http's url.ParseRequestURI reads the target then)
// or gives the URL that url.ParseRequestURI gives, field for field.
func TestPlainURLReadsAsParseRequestURI(t *testing.T) {
	targets := []string{"/", "//", "///a", "//host/path", "/a?", "/a??", "/a?b?", "/?", "/?b",
		"/a?b=c&d=%zz", "/a%20b", "/%2F", "/a;b,c:d@e=f+g$h&i~j_k.l-m"}
	for c := byte('!'); c < 0x7f; c++ {
		s := string(c)
		targets = append(targets, "/"+s, "/a"+s+"b", "/a?"+s, "/a?b"+s, "/"+s+"?", "/a/"+s+s, "/"+s+"?"+s)
	}
	taken, declined := 0, 0
	for _, target := range targets {
		if _, _, ok := requestLine("GET " + target + " HTTP/1.1"); !ok {
			continue // parse never gets to the URL
		}
		var got url.URL
		if !plainURL(target, &got) {
			declined++
			continue
		}
		taken++
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Errorf("plainURL took %q, which url.ParseRequestURI refuses: %v", target, err)
			continue
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("plainURL(%q) = %#v, url.ParseRequestURI %#v", target, got, *want)
		}
	}
	// The plain bytes of a path are 13 marks and 62 letters and digits;
	// the others (%, !, *, ', (, ), ", <, >, [, ], \, ^, `, {, |, }, and ?
	// in a path) are left to url.
	if taken < 500 || declined < 80 {
		t.Errorf("plainURL took %d targets and declined %d: the test no longer covers both", taken, declined)
	}
}
