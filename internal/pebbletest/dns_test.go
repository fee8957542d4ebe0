package pebbletest

import (
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAnswer(t *testing.T) {
	const zone = "cutover.test."
	tests := []struct {
		name    string
		typ     dnsmessage.Type
		rcode   dnsmessage.RCode
		answers int
	}{
		{"a.cutover.test.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"A.Cutover.Test.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"a.cutover.test.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 0},
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
		{"xcutover.test.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
	}
	for _, tt := range tests {
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
		_ = b.StartQuestions()
		_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(tt.name), Type: tt.typ, Class: dnsmessage.ClassINET})
		q, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		resp, ok := answer(q, zone)
		if !ok {
			t.Fatalf("%s: no answer", tt.name)
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatal(err)
		}
		if m.ID != 7 || m.RCode != tt.rcode || len(m.Answers) != tt.answers {
			t.Errorf("%s %v: id %d rcode %v answers %d, want 7 %v %d", tt.name, tt.typ, m.ID, m.RCode, len(m.Answers), tt.rcode, tt.answers)
		}
	}
}
