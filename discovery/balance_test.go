package discovery

import (
	"strings"
	"testing"
)

func TestParseBalance(t *testing.T) {
	tests := []struct {
		in      string
		want    Balance
		wantErr string // substring of the error; "" for none
	}{
		{"", Balance{Policy: RoundRobin}, ""},
		{"roundrobin", Balance{Policy: RoundRobin}, ""},
		{" leastconn ", Balance{Policy: LeastConn}, ""},
		{"p2c", Balance{Policy: P2C}, ""},
		{"random", Balance{Policy: Random}, ""},
		{"hash:source", Balance{Policy: HashSource}, ""},
		{"hash:header:x-user-id", Balance{Policy: HashHeader, Name: "X-User-Id"}, ""},
		{"hash:header:X_TENANT", Balance{Policy: HashHeader, Name: "X_tenant"}, ""}, // as http.Header.Get looks it up
		{"cookie:SID", Balance{Policy: Cookie, Name: "SID"}, ""},
		{"cookie:sid", Balance{Policy: Cookie, Name: "sid"}, ""}, // cookie names keep their case
		{"foo", Balance{}, `unknown policy "foo": want roundrobin`},
		{"RoundRobin", Balance{}, "unknown policy"},
		{"hash", Balance{}, "unknown policy"},
		{"hash:", Balance{}, "unknown policy"},
		{"hash:header", Balance{}, "unknown policy"},
		{"hash:header:", Balance{}, "not a valid HTTP token"},
		{"hash:header:a b", Balance{}, "not a valid HTTP token"},
		{"hash:header:a:b", Balance{}, "not a valid HTTP token"},
		{"cookie:", Balance{}, "not a valid HTTP token"},
		{"cookie:a;b", Balance{}, "not a valid HTTP token"},
		{"cookie:a=b", Balance{}, "not a valid HTTP token"},
		{"cookie:é", Balance{}, "not a valid HTTP token"},
	}
	for _, tt := range tests {
		got, err := ParseBalance(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseBalance(%q): unexpected error %v", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseBalance(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		case got != tt.want:
			t.Errorf("ParseBalance(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestBalanceStringRoundTrip(t *testing.T) {
	for _, b := range []Balance{
		{Policy: RoundRobin}, {Policy: LeastConn}, {Policy: P2C}, {Policy: Random},
		{Policy: HashSource}, {Policy: HashHeader, Name: "X-User"}, {Policy: Cookie, Name: "sid"},
	} {
		got, err := ParseBalance(b.String())
		if err != nil || got != b {
			t.Errorf("ParseBalance(%q) = %+v, %v; want %+v", b.String(), got, err, b)
		}
	}
	if s := (Balance{Policy: 99}).String(); s != "unknown" {
		t.Errorf("String of an unknown policy = %q, want unknown", s)
	}
}
