package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// --net-http serves the HTTP listener with net/http's server alone; by
// default cutover's own HTTP/1.1 server answers first. Both carry
// keep-alive GETs and a POST with a body to the backend.
func TestNetHTTPFlagChoosesTheServer(t *testing.T) {
	a := newBackend(t, "a")
	for _, tt := range []struct {
		args   []string
		server string
	}{
		{nil, "cutover"},
		{[]string{"--net-http"}, "net/http"},
	} {
		t.Run(tt.server, func(t *testing.T) {
			in := start(t, fmt.Sprintf("services:\n  web:\n    host: web.test\n    backends: [%s]\n", a.addr()), tt.args...)
			started := in.waitLog(time.Second, func(l map[string]any) bool { return l["message"] == "cutover started" })
			if got := started["http_server"]; got != tt.server {
				t.Errorf("started with http_server %v, want %q", got, tt.server)
			}
			c := &http.Client{Timeout: 5 * time.Second}
			reused := 0
			for i := range 5 {
				req, _ := http.NewRequest("GET", in.http+"/", nil)
				req.Host = "web.test"
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(ci httptrace.GotConnInfo) {
						if ci.Reused {
							reused++
						}
					},
				}))
				res, err := c.Do(req)
				if err != nil {
					t.Fatalf("GET %d: %v", i, err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(body), "a") {
					t.Fatalf("GET %d: %d %q", i, res.StatusCode, body)
				}
			}
			if reused != 4 {
				t.Errorf("%d of 4 GETs reused the connection", reused)
			}
			req, _ := http.NewRequest("POST", in.http+"/", strings.NewReader("a body"))
			req.Host = "web.test"
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("POST: %d", res.StatusCode)
			}
		})
	}
}
