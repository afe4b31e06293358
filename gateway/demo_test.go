package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestDemoPageEnabled(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		demo bool
	}{
		{name: "development default serves it", env: nil, demo: true},
		{name: "development turned off", env: map[string]string{"DEMO_ENABLED": "false"}, demo: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGateway(t, gwOptions{env: tt.env})
			st, ct, body := get(t, g.http.URL+"/")
			if tt.demo {
				if st != http.StatusOK || !strings.HasPrefix(ct, "text/html") {
					t.Fatalf("demo page: %d %s", st, ct)
				}
			} else if st != http.StatusNotFound || decodeError(t, body) != codeNotFound {
				t.Fatalf("demo off: / answered %d %s, want 404 JSON", st, body)
			}
			// The client library is not part of the demo: always served.
			if st, ct, _ := get(t, g.http.URL+"/client.js"); st != http.StatusOK || !strings.HasPrefix(ct, "text/javascript") {
				t.Fatalf("/client.js: %d %s", st, ct)
			}
		})
	}
}

// Production leaves the demo off unless DEMO_ENABLED=true.
func TestDemoPageProduction(t *testing.T) {
	prod := map[string]string{
		"GATEWAY_ENV":      "production",
		"AUTH_WEBHOOK_URL": "https://auth.test/login",
	}
	g := startGateway(t, gwOptions{env: prod})
	if st, _, body := get(t, g.http.URL+"/"); st != http.StatusNotFound || decodeError(t, body) != codeNotFound {
		t.Fatalf("production /: %d %s, want 404 JSON", st, body)
	}
	prod["DEMO_ENABLED"] = "true"
	g = startGateway(t, gwOptions{env: prod})
	if st, _, _ := get(t, g.http.URL+"/"); st != http.StatusOK {
		t.Fatalf("production with DEMO_ENABLED=true: / answered %d", st)
	}
}

// The e2e browser tests and the client-js demo test read the page by these
// ids: renaming one breaks them, so it must fail here first.
func TestDemoPageElements(t *testing.T) {
	g := startGateway(t, gwOptions{})
	st, _, body := get(t, g.http.URL+"/")
	if st != http.StatusOK {
		t.Fatalf("demo page: %d", st)
	}
	page := string(body)
	for _, want := range []string{
		`id="state"`, `id="log"`, `id="who"`, `id="instance"`, `id="conn"`, `id="logout-btn"`,
		// issue 10: positions, and the badge a reconnect sets
		`id="positions"`, `id="recovered-badge"`, `data-recovered=`,
		`'recovered'`, `'not recovered: refetch'`, `window.sg = {`,
		// issue 11: the message button, its event name and what it logs
		`id="msg"`, `id="send-btn"`, `{ event: 'echo' }`, `'ack '`, `'error '`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("demo page lacks %s", want)
		}
	}
}
