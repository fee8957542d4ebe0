package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// dataFile is the file under -data-dir that /data appends to and reads.
const dataFile = "data.log"

// MaxDataWrite bounds the value of one /data?write=.
const MaxDataWrite = 4096

// store is the /data file: lines appended by /data?write=VALUE and read
// back by /data, so that a test can show that a volume mounted at
// -data-dir keeps what one container wrote for the next. Its zero value
// (no directory) is off. It is safe for concurrent use.
type store struct {
	dir string
	mu  sync.Mutex // serializes appends, so that lines never interleave
}

// serveData is /data: with ?write=VALUE (GET or POST) it appends VALUE
// and a newline to the file; either way it answers with the whole file.
func (a *app) serveData(w http.ResponseWriter, r *http.Request) {
	a.setIdentity(w.Header())
	if a.data.dir == "" {
		http.Error(w, "no data directory: start testapp with -data-dir (or TESTAPP_DATA_DIR)", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if q.Has("write") {
		v := q.Get("write")
		if v == "" || len(v) > MaxDataWrite || strings.ContainsAny(v, "\r\n") {
			http.Error(w, fmt.Sprintf("query write=%.40q: want 1 to %d bytes without a newline", v, MaxDataWrite), http.StatusBadRequest)
			return
		}
		if err := a.data.append(v); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	b, err := a.data.read()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *store) path() string { return filepath.Join(s.dir, dataFile) }

// append adds v and a newline to the file, creating it if needed.
func (s *store) append(v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open data file: %w", err)
	}
	_, err = f.WriteString(v + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write data file: %w", err)
	}
	return nil
}

// read returns the file; a file not yet written reads as empty.
func (s *store) read() ([]byte, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read data file: %w", err)
	}
	return b, nil
}
