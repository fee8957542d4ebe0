package e2e

// A registry on 127.0.0.1 that serves, for pulls only, images the test
// exported with docker save: no registry can be reached from here, and a
// webhook deploy always pulls (a push means the registry has a newer
// image). The engine treats 127.0.0.0/8 as an insecure registry by
// default, so it pulls over plain HTTP.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	mediaManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaConfig   = "application/vnd.docker.container.image.v1+json"
	mediaLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// registry serves manifests by "<name>:<tag>" and blobs by digest.
type registry struct {
	*httptest.Server
	mu        sync.Mutex
	manifests map[string][]byte
	blobs     map[string][]byte
	pulls     map[string]int // manifest requests by repository name
}

func newRegistry(t *testing.T) *registry {
	t.Helper()
	r := &registry{manifests: map[string][]byte{}, blobs: map[string][]byte{}, pulls: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// host is the registry's part of an image reference: 127.0.0.1:PORT.
func (r *registry) host() string { return strings.TrimPrefix(r.URL, "http://") }

// push stores the local image ref under name:tag, as docker push would.
func (r *registry) push(t *testing.T, ref, name, tag string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "image.tar")
	docker(t, "save", "-o", file, ref)
	files, err := untar(file)
	if err != nil {
		t.Fatalf("read docker save of %s: %v", ref, err)
	}
	var saved []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &saved); err != nil || len(saved) != 1 {
		t.Fatalf("manifest.json of docker save of %s: %v", ref, err)
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Size      int    `json:"size"`
		Digest    string `json:"digest"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: mediaManifest}
	r.mu.Lock()
	defer r.mu.Unlock()
	config := files[saved[0].Config]
	m.Config = desc{mediaConfig, len(config), r.blob(config)}
	for _, l := range saved[0].Layers {
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, _ = w.Write(files[l])
		_ = w.Close()
		m.Layers = append(m.Layers, desc{mediaLayer, gz.Len(), r.blob(gz.Bytes())})
	}
	b, _ := json.Marshal(m)
	r.manifests[name+":"+tag] = b
	r.blob(b) // the engine may ask for it again by digest
}

// blob stores b and returns its digest; r.mu is held.
func (r *registry) blob(b []byte) string {
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
	r.blobs[d] = b
	return d
}

func untar(file string) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if out[h.Name], err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
}

// serve answers the pull side of the registry API: /v2/,
// /v2/<name>/manifests/<tag> and /v2/<name>/blobs/<digest>.
func (r *registry) serve(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	if path == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var body []byte
	if name, tag, ok := strings.Cut(path, "/manifests/"); ok {
		body = r.manifests[name+":"+tag]
		if body == nil {
			body = r.blobs[tag] // by digest
		}
		if body != nil {
			r.pulls[name]++
		}
		w.Header().Set("Content-Type", mediaManifest)
	} else if _, digest, ok := strings.Cut(path, "/blobs/"); ok {
		body = r.blobs[digest]
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	if body == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}`)
		return
	}
	w.Header().Set("Docker-Content-Digest", fmt.Sprintf("sha256:%x", sha256.Sum256(body)))
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// pulled returns how many times a manifest of the repository name was
// asked for.
func (r *registry) pulled(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulls[name]
}
