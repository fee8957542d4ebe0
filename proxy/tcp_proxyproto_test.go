package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestProxyHeaderBytes(t *testing.T) {
	v4 := func(s string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: port} }
	sig := []byte(proxyV2Signature)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name     string
		version  string
		src, dst net.Addr
		want     []byte
	}{
		{"none", "", v4("192.0.2.1", 1), v4("192.0.2.2", 2), nil},
		{"v1 ipv4", "v1", v4("192.0.2.1", 56324), v4("198.51.100.7", 443),
			[]byte("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n")},
		{"v1 ipv4 mapped in ipv6 (dual-stack listener)", "v1", v4("::ffff:192.0.2.1", 1000), v4("::ffff:192.0.2.2", 5432),
			[]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 5432\r\n")},
		{"v1 ipv6", "v1", v4("2001:db8::1", 1000), v4("2001:db8::2", 5432),
			[]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1000 5432\r\n")},
		{"v1 mixed", "v1", v4("192.0.2.1", 1000), v4("2001:db8::2", 5432),
			[]byte("PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1000 5432\r\n")},
		{"v1 unknown", "v1", &net.UnixAddr{Name: "/x", Net: "unix"}, v4("192.0.2.2", 2),
			[]byte("PROXY UNKNOWN\r\n")},
		{"v2 ipv4", "v2", v4("192.0.2.1", 56324), v4("198.51.100.7", 443),
			cat(sig, []byte{0x21, 0x11, 0, 12, 192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb})},
		{"v2 ipv6", "v2", v4("2001:db8::1", 1), v4("2001:db8::2", 2),
			cat(sig, []byte{0x21, 0x21, 0, 36},
				net.ParseIP("2001:db8::1").To16(), net.ParseIP("2001:db8::2").To16(), []byte{0, 1, 0, 2})},
		{"v2 unknown", "v2", &net.UnixAddr{Name: "/x", Net: "unix"}, v4("192.0.2.2", 2),
			cat(sig, []byte{0x21, 0x00, 0, 0})},
	} {
		if got := proxyHeader(c.version, c.src, c.dst); !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// headerServer accepts one connection, reads n bytes (the header) and
// then 4 more (the client's first bytes), and sends them on got.
func headerServer(t *testing.T, n int) (string, <-chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		for _, size := range []int{n, 4} {
			b := make([]byte, size)
			if _, err := io.ReadFull(c, b); err != nil {
				t.Errorf("backend read: %v", err)
				return
			}
			got <- b
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), got
}

func TestTCPProxyProtocolHeaders(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			h := newHarness(t, Config{TCPHost: "127.0.0.1"})
			port := freePort(t)
			// The expected header depends on the client's port: dial
			// first from a known port by binding it.
			clientPort := freePort(t)
			want := []byte("PROXY TCP4 127.0.0.1 127.0.0.1 " + strconv.Itoa(clientPort) + " " + strconv.Itoa(port) + "\r\n")
			if version == "v2" {
				want = []byte(proxyV2Signature + "\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01")
				want = binary.BigEndian.AppendUint16(want, uint16(clientPort))
				want = binary.BigEndian.AppendUint16(want, uint16(port))
			}
			addr, got := headerServer(t, len(want))
			svc := tcpService("pp", port, addrEndpoint("b", addr))
			svc.Options.TCP.ProxyProtocol = version
			h.p.Update(snapshot(svc))
			h.runTCP()
			h.waitListening("pp")
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: clientPort}}
			c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "data"); err != nil {
				t.Fatal(err)
			}
			if header := recv(t, got); !bytes.Equal(header, want) {
				t.Errorf("header: got %q, want %q", header, want)
			}
			if data := recv(t, got); string(data) != "data" {
				t.Errorf("after the header: %q, want the client's bytes", data)
			}
		})
	}
}
