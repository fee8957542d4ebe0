package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A backend added to the file under load starts serving without a restart
// and without a failed request.
func TestAddBackendUnderLoad(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: add.test
    backends: [%s]
`, a.addr()))
	pid := in.cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan *load)
	go func() { done <- runLoad(ctx, in, "add.test", "/", 8, 2000) }()
	eventually(t, 10*time.Second, func() error {
		if a.requests.Load() < 100 {
			return fmt.Errorf("a served %d", a.requests.Load())
		}
		return nil
	})
	in.writeConfig(fmt.Sprintf(`
services:
  web:
    host: add.test
    backends: [%s, %s]
`, a.addr(), b.addr()))
	l := <-done
	if l.failed.Load() != 0 {
		t.Fatalf("%d requests failed: %v", l.failed.Load(), l.failures)
	}
	if l.count("b") == 0 {
		t.Fatalf("the added backend served no request; a served %d", l.count("a"))
	}
	if in.cmd.Process.Pid != pid || processExited(in) {
		t.Fatal("cutover restarted")
	}
}

func processExited(in *instance) bool {
	select {
	case <-in.exited:
		return true
	default:
		return false
	}
}

// An invalid edit is reported with its line and key and the last good
// configuration keeps serving; a fix is applied.
func TestInvalidEditKeepsServing(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	in := start(t, fmt.Sprintf(`
services:
  web:
    host: edit.test
    backends: [%s]
`, a.addr()))
	in.writeConfig(fmt.Sprintf(`
services:
  web:
    host: edit.test
    balance: fastest
    backends: [%s]
`, b.addr()))
	rejected := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["message"] == "configuration rejected; the last good one stays in effect"
	})
	errText := fmt.Sprint(rejected["error"])
	if !strings.Contains(errText, ":5:") || !strings.Contains(errText, "balance") || !strings.Contains(errText, "fastest") {
		t.Errorf("error %q: want the line (5), the key (balance) and the value", errText)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for range 20 {
		code, body, err := in.get(c, "edit.test", "/")
		if err != nil || code != 200 || !strings.HasPrefix(body, "a ") {
			t.Fatalf("after an invalid edit: got %d %q %v, want 200 from a", code, body, err)
		}
	}
	if got := metricValue(t, in, "cutover_config_reloads_total", map[string]string{"provider": "file", "result": "failure"}); got != 1 {
		t.Errorf("cutover_config_reloads_total{result=failure} = %v, want 1", got)
	}
	st := apiStatus(t, in)
	if len(st.Providers) != 1 || !strings.Contains(st.Providers[0].LastError, "fastest") {
		t.Errorf("API providers = %+v, want the file's last error", st.Providers)
	}
	in.writeConfig(fmt.Sprintf(`
services:
  web:
    host: edit.test
    balance: leastconn
    backends: [%s]
`, b.addr()))
	eventually(t, 5*time.Second, func() error {
		code, body, err := in.get(c, "edit.test", "/")
		if err != nil || code != 200 || !strings.HasPrefix(body, "b ") {
			return fmt.Errorf("got %d %q %v, want 200 from b", code, body, err)
		}
		return nil
	})
}

type apiDoc struct {
	Services []struct {
		Name     string
		Balance  string
		Backends []struct {
			Name, State string
			Available   bool
			Requests    uint64
		}
	}
	Providers []struct {
		Name      string
		LastError string `json:"last_error"`
	}
}

func apiStatus(t *testing.T, in *instance) apiDoc {
	t.Helper()
	res, err := http.Get(in.admin + "/api/v1/services")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc apiDoc
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}
