package httpsyntax

import (
	"strings"
	"testing"
)

func TestTrimOWSIsStringsTrim(t *testing.T) {
	for _, s := range []string{"", " ", "\t", " \t ", "a", " a", "a\t", "\t a b \t", "a \r", "\ra\n", " \x00 ", "\u00a0a\u00a0", "a  b"} {
		if got, want := TrimOWS(s), strings.Trim(s, " \t"); got != want {
			t.Errorf("TrimOWS(%q) = %q, want %q", s, got, want)
		}
	}
}
