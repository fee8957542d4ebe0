package proxy

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
)

// The PROXY protocol (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt)
// tells a backend the client's address: cutover sends one header at the
// start of each backend connection, with the client's address as source
// and the address the client connected to as destination.

// proxyV2Signature starts every version 2 header.
const proxyV2Signature = "\r\n\r\n\x00\r\nQUIT\n"

// proxyHeader returns the header of the given version ("v1", "v2") for a
// connection from src to dst, or nil for "".
func proxyHeader(version string, src, dst net.Addr) []byte {
	switch version {
	case "v1":
		return proxyV1(src, dst)
	case "v2":
		return proxyV2(src, dst)
	}
	return nil
}

// proxyAddrs returns the two addresses as one family: IPv4 when both are
// (IPv4-mapped IPv6 counts as IPv4), else IPv6. ok is false when either
// is not a TCP address.
func proxyAddrs(src, dst net.Addr) (s, d netip.AddrPort, v4, ok bool) {
	sa, ok1 := src.(*net.TCPAddr)
	da, ok2 := dst.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return s, d, false, false
	}
	s, d = sa.AddrPort(), da.AddrPort()
	sIP, dIP := s.Addr().Unmap().WithZone(""), d.Addr().Unmap().WithZone("")
	if !sIP.IsValid() || !dIP.IsValid() {
		return s, d, false, false
	}
	v4 = sIP.Is4() && dIP.Is4()
	if !v4 {
		sIP, dIP = netip.AddrFrom16(sIP.As16()), netip.AddrFrom16(dIP.As16())
	}
	return netip.AddrPortFrom(sIP, s.Port()), netip.AddrPortFrom(dIP, d.Port()), v4, true
}

// proxyV1 is the text header: "PROXY TCP4 src dst sport dport\r\n".
func proxyV1(src, dst net.Addr) []byte {
	s, d, v4, ok := proxyAddrs(src, dst)
	if !ok {
		return []byte("PROXY UNKNOWN\r\n")
	}
	b := make([]byte, 0, 108) // the longest v1 header
	b = append(b, "PROXY TCP6 "...)
	if v4 {
		b[len("PROXY TCP")] = '4'
	}
	b = s.Addr().AppendTo(b)
	b = append(b, ' ')
	b = d.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(s.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(d.Port()), 10)
	return append(b, "\r\n"...)
}

// proxyV2 is the binary header: signature, version 2 and command PROXY,
// TCP over IPv4 or IPv6, length, addresses and ports. Addresses that are
// not TCP are sent as AF_UNSPEC, which tells the backend to use the
// connection's own.
func proxyV2(src, dst net.Addr) []byte {
	s, d, v4, ok := proxyAddrs(src, dst)
	b := make([]byte, 0, 16+36)
	b = append(b, proxyV2Signature...)
	b = append(b, 0x21) // version 2, PROXY
	switch {
	case !ok:
		return append(b, 0x00, 0, 0)
	case v4:
		b = append(b, 0x11) // AF_INET, STREAM
		b = binary.BigEndian.AppendUint16(b, 12)
		s4, d4 := s.Addr().As4(), d.Addr().As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	default:
		b = append(b, 0x21) // AF_INET6, STREAM
		b = binary.BigEndian.AppendUint16(b, 36)
		s16, d16 := s.Addr().As16(), d.Addr().As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, s.Port())
	return binary.BigEndian.AppendUint16(b, d.Port())
}
