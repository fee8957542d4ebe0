package acme

import (
	"net"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// startDNS runs a DNS server on 127.0.0.1 (UDP) that answers A queries
// for names in zone (such as "cutover.test.") with 127.0.0.1, other
// queries in zone with no record, and names outside zone with NXDOMAIN.
// It is pebble's resolver, so that its validation of a.cutover.test
// reaches the test's servers. It stops at the end of the test.
func startDNS(t *testing.T, zone string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if resp, ok := dnsAnswer(buf[:n], zone); ok {
				_, _ = pc.WriteTo(resp, addr)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

func dnsAnswer(query []byte, zone string) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	inZone := name == zone || strings.HasSuffix(name, "."+zone)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !inZone {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	if inZone && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rr, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, false
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}

func TestDNSAnswer(t *testing.T) {
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
		resp, ok := dnsAnswer(q, zone)
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
