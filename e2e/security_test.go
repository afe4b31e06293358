//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// Scenario 6: cross-site WebSocket hijacking. A page on another origin opens
// a WebSocket to the gateway while the victim's cookie sits in the browser:
// refused. A Go client that does send the cookie with a foreign Origin gets
// HTTP 403, while the same cookie with the gateway's own origin connects.
func TestCrossSiteWebSocketHijackingRefused(t *testing.T) {
	tc := startCluster(t, cluster.Options{})
	b := startBrowser(t, tc, false)
	ctx := b.newContext("victim")
	p := ctx.newPage("victim")
	p.loginAndConnect(tc.URL(), "victim")
	ck := ctx.sessionCookie(tc, tc.URL(), "sg_session")

	// The attacker's site: another origin (localhost vs 127.0.0.1).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evilOrigin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	wsURL := strings.Replace(tc.URL(), "http://", "ws://", 1) + "/ws"
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><script>
			const ws = new WebSocket(%s);
			ws.onmessage = (e) => { document.title = 'stolen: ' + e.data; };
		</script>`, jsString(wsURL))
	})}
	go func() { _ = evil.Serve(ln) }()
	t.Cleanup(func() { _ = evil.Close() })

	attacker := ctx.newPage("attacker")
	attacker.goto_(evilOrigin + "/")
	var rec wsRecord
	attacker.waitFor(generous, "hijack attempt settles", `window.__ws.length > 0 && window.__ws[0].closed && window.__ws[0]`, &rec)
	if rec.Opened || rec.Welcome != nil || len(rec.Events) > 0 {
		t.Fatalf("cross-site WebSocket opened: %+v", rec)
	}
	t.Logf("cross-site WebSocket from %s: closed with %d without opening", evilOrigin, rec.Closed.Code)
	eventually(t, generous, "gateway logged the refusal", func() error {
		var files []string
		for _, g := range tc.Gateways {
			files = append(files, g.LogPath)
		}
		if !logContains(files, "cross-origin websocket refused", evilOrigin) {
			return fmt.Errorf("no \"cross-origin websocket refused\" line with origin %s", evilOrigin)
		}
		return nil
	})
	eventually(t, generous, "haproxy logged a 403 for /ws", func() error {
		if !logContains([]string{tc.LB.AccessLog()}, " 403 ", "GET /ws") {
			return fmt.Errorf("no 403 GET /ws line in the haproxy log")
		}
		return nil
	})

	// The Origin check itself, with the cookie certainly sent.
	dial := func(origin string, withCookie bool) (int, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if withCookie {
			h.Set("Cookie", "sg_session="+ck.Value)
		}
		dctx, cancel := context.WithTimeout(context.Background(), generous)
		defer cancel()
		c, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if err != nil {
			return status, err
		}
		defer c.CloseNow()
		_, msg, err := c.Read(dctx)
		if err != nil {
			return status, err
		}
		var w welcome
		if json.Unmarshal(msg, &w) != nil || w.UserID != "victim" {
			return status, fmt.Errorf("first frame %s", msg)
		}
		c.Close(websocket.StatusNormalClosure, "")
		return status, nil
	}
	for _, tt := range []struct {
		name       string
		origin     string
		withCookie bool
		want       int
	}{
		{name: "cookie with a foreign origin", origin: "http://evil.example", withCookie: true, want: http.StatusForbidden},
		{name: "cookie with the attacker page's origin", origin: evilOrigin, withCookie: true, want: http.StatusForbidden},
		{name: "cookie with the gateway's origin", origin: tc.URL(), withCookie: true, want: http.StatusSwitchingProtocols},
		{name: "no cookie with the gateway's origin", origin: tc.URL(), withCookie: false, want: http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, err := dial(tt.origin, tt.withCookie)
			if status != tt.want {
				t.Fatalf("handshake status %d (err %v), want %d", status, err, tt.want)
			}
			if tt.want == http.StatusSwitchingProtocols && err != nil {
				t.Fatalf("allowed origin: %v", err)
			}
		})
	}
}

// Scenario 7a: the session cookie is HttpOnly (invisible to document.cookie)
// and carries the configured SameSite.
func TestSessionCookieHttpOnlyAndSameSite(t *testing.T) {
	tc := startCluster(t, cluster.Options{Instances: 1, Env: map[string]string{"COOKIE_SAMESITE": "strict"}})
	b := startBrowser(t, tc, false)
	ctx := b.newContext("frank")
	p := ctx.newPage("tab")
	p.loginAndConnect(tc.URL(), "frank")
	ck := ctx.sessionCookie(tc, tc.URL(), "sg_session")
	var docCookie string
	p.eval(`document.cookie`, &docCookie)
	if strings.Contains(docCookie, "sg_session") || strings.Contains(docCookie, ck.Value) {
		t.Errorf("document.cookie exposes the session cookie: %q", docCookie)
	}
	if !ck.HTTPOnly || ck.SameSite != "Strict" || ck.Path != "/" {
		t.Errorf("cookie = {httpOnly:%v sameSite:%s path:%s}, want HttpOnly, SameSite=Strict (configured), Path=/", ck.HTTPOnly, ck.SameSite, ck.Path)
	}
}

// Scenario 7b: production mode behind TLS: __Host-sg_session, Secure, Path=/,
// no Domain; webhook authentication; the WebSocket works over wss.
func TestProductionCookieBehindTLS(t *testing.T) { forEachLB(t, testProductionCookieBehindTLS) }

func testProductionCookieBehindTLS(t *testing.T, lb string) {
	requireSuite(t)
	hook, hookCA := startAuthWebhook(t)
	tc := startCluster(t, cluster.Options{
		LB:         lb,
		Instances:  1,
		Production: true,
		Env: map[string]string{"AUTH_MODE": "webhook", "AUTH_WEBHOOK_URL": hook, "LOG_LEVEL": "debug",
			// Production takes an https webhook only; the gateway trusts the
			// webhook's throwaway certificate through Go's SSL_CERT_FILE.
			"SSL_CERT_FILE": hookCA,
			// The browser below drives the demo page, off by default in production.
			"DEMO_ENABLED": "true"},
	})
	if !strings.HasPrefix(tc.URL(), "https://") {
		t.Fatalf("production LB URL %s is not https", tc.URL())
	}

	// Raw Set-Cookie, as the browser receives it.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // throwaway certificate
	}}
	req, _ := http.NewRequest(http.MethodPost, tc.URL()+"/auth/login", strings.NewReader(`{"user_id":"grace","password":"correct horse"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", tc.URL())
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("production login: HTTP %d", resp.StatusCode)
	}
	raw := resp.Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie headers = %d, want 1", len(raw))
	}
	sc := raw[0]
	name, rest, _ := strings.Cut(sc, "=")
	value, attrs, _ := strings.Cut(rest, ";")
	tc.addSecret(value, "production Set-Cookie")
	lower := strings.ToLower(attrs)
	if name != "__Host-sg_session" {
		t.Errorf("cookie name %q, want __Host-sg_session", name)
	}
	for _, want := range []string{"secure", "httponly", "path=/", "samesite=lax"} {
		if !strings.Contains(lower, want) {
			t.Errorf("Set-Cookie attributes %q lack %s", attrs, want)
		}
	}
	if strings.Contains(lower, "domain=") {
		t.Errorf("Set-Cookie attributes %q carry a Domain (forbidden with __Host-)", attrs)
	}

	// The browser's view, and a wss connection through the TLS LB.
	b := startBrowser(t, tc, true)
	ctx := b.newContext("grace")
	p := ctx.newPage("tab")
	p.goto_(tc.URL() + "/")
	if code := p.login("grace", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: HTTP %d, want 401", code)
	}
	if code := p.login("grace", "correct horse"); code != http.StatusOK {
		t.Fatalf("browser login: HTTP %d", code)
	}
	p.reload()
	_, ws := p.openSocket(generous, 0, "welcome over wss")
	if !strings.HasPrefix(ws.URL, "wss://") || ws.Welcome.UserID != "grace" {
		t.Errorf("socket %s welcome %+v, want wss and user grace", ws.URL, ws.Welcome)
	}
	ck := ctx.sessionCookie(tc, tc.URL(), "__Host-sg_session")
	if !ck.Secure || !ck.HTTPOnly || ck.Path != "/" || ck.SameSite != "Lax" || ck.Domain != "127.0.0.1" {
		t.Errorf("browser cookie = %+v, want Secure, HttpOnly, Path=/, SameSite=Lax, host-only", ck)
	}
	var docCookie string
	p.eval(`document.cookie`, &docCookie)
	if strings.Contains(docCookie, "sg_session") {
		t.Errorf("document.cookie exposes the session cookie: %q", docCookie)
	}
}

// startAuthWebhook serves the application's login webhook over TLS with a
// throwaway certificate: password "correct horse" logs in as the given
// user, anything else is a 401. It returns the URL and the certificate's
// PEM file.
func startAuthWebhook(t *testing.T) (url, certFile string) {
	t.Helper()
	certFile = filepath.Join(t.TempDir(), "webhook.pem")
	if err := cluster.WriteSelfSignedPEM(certFile); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, certFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct {
			UserID   string `json:"user_id"`
			Password string `json:"password"`
		}
		if json.NewDecoder(r.Body).Decode(&c) != nil || c.Password != "correct horse" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"user_id": c.UserID, "data": map[string]string{"role": "tester"}})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/login", certFile
}
