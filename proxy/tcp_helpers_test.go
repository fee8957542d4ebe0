package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/discovery"
)

// echoServer is a TCP server on 127.0.0.1 that greets each connection
// with its name and a newline, then echoes what it reads. Closing it
// closes its listener and every open connection.
type echoServer struct {
	name     string
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	once     sync.Once
}

func newEchoServer(t testing.TB, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{name: name, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Go(s.serve)
	t.Cleanup(s.Close)
	return s
}

func (s *echoServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			if _, err := io.WriteString(c, s.name+"\n"); err != nil {
				return
			}
			if _, err := io.Copy(c, c); err == nil {
				// The client closed its sending half: close ours.
				_ = c.(*net.TCPConn).CloseWrite()
			}
		})
	}
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// Close stops the server: new connections are refused, open ones closed.
func (s *echoServer) Close() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *echoServer) endpoint() discovery.Endpoint { return addrEndpoint(s.name, s.addr()) }

// tcpService is a round-robin protocol tcp service listening on port.
func tcpService(name string, port int, eps ...discovery.Endpoint) discovery.Service {
	s := service(name, eps...)
	s.Options.Protocol = discovery.TCP
	s.Options.TCP.Listen = port
	return s
}

// freePort returns a port on 127.0.0.1 where nothing listens.
func freePort(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(refusedAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// runTCP runs RunTCP on the harness's proxy until the test ends.
func (h *harness) runTCP() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.RunTCP(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := recv(h.t, done); err != nil {
			h.t.Errorf("RunTCP: %v", err)
		}
	})
}

// waitListeners waits until RunTCP's listener states satisfy ok.
func (h *harness) waitListeners(ok func([]TCPListener) bool) []TCPListener {
	h.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ls := h.p.TCPListeners()
		if ok(ls) {
			return ls
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timeout waiting for TCP listeners; have %+v", ls)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitListening waits until service listens.
func (h *harness) waitListening(service string) {
	h.t.Helper()
	h.waitListeners(func(ls []TCPListener) bool {
		for _, l := range ls {
			if l.Service == service && l.Err == nil {
				return true
			}
		}
		return false
	})
}

// tcpClient is a client connection through the proxy to an echoServer.
type tcpClient struct {
	t       testing.TB
	c       net.Conn
	r       *bufio.Reader
	backend string // the greeting: the echo server's name
}

// dialEcho connects to port on 127.0.0.1 and reads the greeting.
func dialEcho(t testing.TB, port int) *tcpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	tc := &tcpClient{t: t, c: c, r: bufio.NewReader(c)}
	line, err := tc.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	tc.backend = strings.TrimSuffix(line, "\n")
	return tc
}

// roundTrip sends msg and reads it back.
func (tc *tcpClient) roundTrip(msg string) error {
	if _, err := io.WriteString(tc.c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(tc.r, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		tc.t.Errorf("echo: got %q, want %q", buf, msg)
	}
	return nil
}

// selfSigned returns a certificate for host and a pool that trusts it.
func selfSigned(t testing.TB, host string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
