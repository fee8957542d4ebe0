package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverproxy/cutover/bench/backend"
)

func TestRefusedProviders(t *testing.T) {
	out := `go: downloading github.com/foo/bar v1.0.0
../lego/providers/dns/alidns/alidns.go:13:2: github.com/go-acme/alidns-20150109/v5@v5.6.1: reading https://proxy.golang.org/github.com/go-acme/alidns-20150109/v5/@v/v5.6.1.zip: 403 Forbidden
	server response: This module version is not available.
../lego/providers/dns/alidns/alidns.go:14:2: github.com/go-acme/alidns-20150109/v5@v5.6.1: reading https://proxy.golang.org/x.zip: 403 Forbidden
/root/go/pkg/mod/github.com/go-acme/lego/v5@v5.4.1/providers/dns/huaweicloud/internal/client.go:21:2: github.com/huaweicloud/huaweicloud-sdk-go-v3@v0.1.213: reading https://proxy.golang.org/y.zip: 403 Forbidden
../lego/providers/dns/cloudflare/cloudflare.go:9:2: undefined: foo
pkg/middlewares/auth/basic_auth.go:63:29: undefined: goauth.CheckSecret
`
	got := refusedProviders(out)
	if want := []string{"alidns", "huaweicloud"}; !slices.Equal(got, want) {
		t.Errorf("refusedProviders = %q, want %q", got, want)
	}
}

const legoProvidersSample = `package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/providers/dns/alidns"
	"github.com/go-acme/lego/v5/providers/dns/azuredns"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
)

func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	switch name {
	case "alidns":
		return alidns.NewDNSProvider()
	case "azure", "azuredns":
		return azuredns.NewDNSProvider()
	case "cloudflare":
		return cloudflare.NewDNSProvider()
	default:
		return nil, fmt.Errorf("unrecognized DNS provider: %s", name)
	}
}
`

func TestDropDNSProviders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zz_gen_dns_providers.go")
	if err := os.WriteFile(path, []byte(legoProvidersSample), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dropDNSProviders(path, []string{"alidns", "azuredns"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	for _, gone := range []string{"alidns", "azuredns", `"azure"`} {
		if strings.Contains(s, gone) {
			t.Errorf("%s left in:\n%s", gone, s)
		}
	}
	for _, kept := range []string{`"github.com/go-acme/lego/v5/providers/dns/cloudflare"`, "return cloudflare.NewDNSProvider()", `case "cloudflare":`, "default:"} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s taken out:\n%s", kept, s)
		}
	}
	if err := dropDNSProviders(path, []string{"route53"}); err == nil || !strings.Contains(err.Error(), `"route53"`) {
		t.Errorf("dropping a provider the file lacks: err = %v, want one naming it", err)
	}
}

func TestReplaceInNamesWhatIsMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "basic_auth.go")
	if err := os.WriteFile(path, []byte("a := goauth.CheckSecret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceIn(path, "goauth.CheckSecret", "check"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a := check\n" {
		t.Errorf("after replaceIn: %q", b)
	}
	if err := replaceIn(path, "goauth.CheckSecret", "check"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("second replaceIn: err = %v, want one naming the file", err)
	}
}

// TestTraefikServesItsConfig starts the Traefik that peerbench built, when
// it is in the cache, with the benchmark's configuration in front of a test
// backend, over HTTP and TCP.
func TestTraefikServesItsConfig(t *testing.T) {
	bin, err := traefikCached()
	if err != nil || !isFile(bin) {
		t.Skip("Traefik is not built (bench/run -proxies traefik builds it)")
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path %s xff %s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer be.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _ = backend.ServeTCP(ctx, ln) }()
	httpOK := func(listen string) func() error {
		return func() error {
			resp, err := http.Get("http://" + listen + "/b/7")
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if want := "path /b/7 xff 127.0.0.1"; resp.StatusCode != http.StatusOK || string(body) != want {
				return fmt.Errorf("%s %q, want 200 %q", resp.Status, body, want)
			}
			return nil
		}
	}
	tf := testTLSFiles(t)
	for _, w := range []workload{workloadByName("ka100"), workloadByName("tcpecho"), workloadByName("h2tls")} {
		listen, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		b := &bench{sup: newSupervisor(), bins: map[string]string{"traefik": bin}, tls: tf,
			httpBackends: []string{strings.TrimPrefix(be.URL, "http://")}, tcpBackends: []string{ln.Addr().String()}}
		proc, err := startTraefik(b, t.TempDir(), w, listen)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case w.tcp:
			err = waitTCP(ctx, listen, proc, 15*time.Second)
		case w.h2:
			err = waitHTTP2(ctx, listen, proc, 15*time.Second)
		default:
			err = poll(ctx, listen, proc, 15*time.Second, httpOK(listen))
		}
		b.sup.stopAll()
		if err != nil {
			t.Errorf("%s: %v", w.name, err)
		}
	}
}

func TestInstallFileLeavesOnlyTheWholeFile(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "built")
	if err := os.WriteFile(from, []byte("#!/bin/sh\necho v3.7.13\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cache", "traefik")
	if err := installFile(from, path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o755 || st.Size() != 23 {
		t.Fatalf("installed file: %v, %v", st, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("cache directory holds %d entries, want the file alone", len(entries))
	}
	if err := checkTraefik(context.Background(), path); err != nil {
		t.Errorf("checkTraefik of a program that prints the version: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkTraefik(context.Background(), path); err == nil {
		t.Error("checkTraefik accepted an empty file")
	}
}
