package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The same-origin fallback (no GATEWAY_ALLOWED_ORIGINS) compares scheme,
// host and port; the scheme is https over TLS, or X-Forwarded-Proto from a
// trusted proxy only.
func TestSameOriginFallback(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8"}})
	const proxy, client = "10.0.0.5:4000", "203.0.113.9:5000"
	tests := []struct {
		name   string
		host   string
		origin string
		tls    bool
		peer   string
		xfp    string
		want   bool
	}{
		{name: "no origin (not a browser)", host: "gw.test", want: true},
		{name: "same http origin", host: "gw.test", origin: "http://gw.test", want: true},
		{name: "host case-insensitive", host: "GW.test", origin: "http://gw.TEST", want: true},
		{name: "http default port explicit in origin", host: "gw.test", origin: "http://gw.test:80", want: true},
		{name: "http default port explicit in host", host: "gw.test:80", origin: "http://gw.test", want: true},
		{name: "same non-default port", host: "gw.test:8080", origin: "http://gw.test:8080", want: true},
		{name: "other port refused", host: "gw.test:8080", origin: "http://gw.test:8081", want: false},
		{name: "origin port missing on non-default host port refused", host: "gw.test:8080", origin: "http://gw.test", want: false},
		{name: "other host refused", host: "gw.test", origin: "http://evil.test", want: false},
		{name: "suffix host refused", host: "gw.test", origin: "http://gw.test.evil.test", want: false},
		{name: "https origin on plain http refused", host: "gw.test", origin: "https://gw.test", want: false},
		{name: "http origin on tls refused", host: "gw.test", origin: "http://gw.test", tls: true, want: false},
		{name: "https origin on tls", host: "gw.test", origin: "https://gw.test", tls: true, want: true},
		{name: "https default port on tls", host: "gw.test:443", origin: "https://gw.test", tls: true, want: true},
		{name: "http port 443 is not https", host: "gw.test:443", origin: "http://gw.test:443", tls: true, want: false},
		{name: "forwarded https from trusted proxy", host: "gw.test", origin: "https://gw.test", peer: proxy, xfp: "https", want: true},
		{name: "http origin behind trusted tls proxy refused", host: "gw.test", origin: "http://gw.test", peer: proxy, xfp: "https", want: false},
		{name: "forwarded proto list takes the outermost", host: "gw.test", origin: "https://gw.test", peer: proxy, xfp: "HTTPS, http", want: true},
		{name: "forwarded https from untrusted peer ignored", host: "gw.test", origin: "https://gw.test", peer: client, xfp: "https", want: false},
		{name: "forwarded http from untrusted peer, http origin", host: "gw.test", origin: "http://gw.test", peer: client, xfp: "https", want: true},
		{name: "garbage forwarded proto means http", host: "gw.test", origin: "https://gw.test", peer: proxy, xfp: "gopher", want: false},
		{name: "ipv6 host", host: "[::1]:8080", origin: "http://[::1]:8080", want: true},
		{name: "null origin refused", host: "gw.test", origin: "null", want: false},
		{name: "unparsable origin refused", host: "gw.test", origin: "http://%zz", want: false},
		{name: "ws scheme refused", host: "gw.test", origin: "ws://gw.test", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.Host = tt.host
			r.RemoteAddr = client
			if tt.peer != "" {
				r.RemoteAddr = tt.peer
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.xfp != "" {
				r.Header.Set("X-Forwarded-Proto", tt.xfp)
			}
			if got := g.srv.originAllowed(r); got != tt.want {
				t.Fatalf("originAllowed = %v, want %v", got, tt.want)
			}
		})
	}
}

// Through the real server: an https page may not log in on a plain-http
// gateway by the same-host fallback, the gateway's own http origin may, and
// a trusted proxy's X-Forwarded-Proto turns it around.
func TestLoginOriginScheme(t *testing.T) {
	login := func(t *testing.T, g *testGateway, origin, xfp string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, g.http.URL+"/auth/login", strings.NewReader(`{"user_id":"olga"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		if xfp != "" {
			req.Header.Set("X-Forwarded-Proto", xfp)
		}
		resp, err := g.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden && decodeError(t, b) != codeForbidden {
			t.Fatalf("403 body: %s", b)
		}
		return resp.StatusCode
	}
	host := func(g *testGateway) string { return strings.TrimPrefix(g.http.URL, "http://") }

	direct := startGateway(t, gwOptions{})
	if st := login(t, direct, "http://"+host(direct), ""); st != http.StatusOK {
		t.Fatalf("same-origin http login: %d", st)
	}
	if st := login(t, direct, "https://"+host(direct), ""); st != http.StatusForbidden {
		t.Fatalf("https origin on a plain-http gateway: %d, want 403", st)
	}
	if st := login(t, direct, "https://"+host(direct), "https"); st != http.StatusForbidden {
		t.Fatalf("X-Forwarded-Proto from an untrusted peer was believed: %d, want 403", st)
	}

	behind := startGateway(t, gwOptions{env: map[string]string{"GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}})
	if st := login(t, behind, "https://"+host(behind), "https"); st != http.StatusOK {
		t.Fatalf("https origin behind a trusted TLS proxy: %d, want 200", st)
	}
	if st := login(t, behind, "http://"+host(behind), "https"); st != http.StatusForbidden {
		t.Fatalf("http origin behind a trusted TLS proxy: %d, want 403", st)
	}
}
