package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// adminClient is an operator's browser against one gateway: it keeps the
// admin cookie and the CSRF token, and sends the gateway's own Origin.
type adminClient struct {
	t      testing.TB
	base   string
	origin string
	hc     *http.Client
	csrf   string
	cookie *http.Cookie
	// headers are added to every request (e.g. X-Forwarded-Proto).
	headers map[string]string
}

func newAdminClient(t testing.TB, base string) *adminClient {
	return &adminClient{t: t, base: base, origin: base, hc: &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends one request; csrf and origin are sent when set.
func (a *adminClient) do(method, path string, body any, csrf, origin string) (*http.Response, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set(adminCSRFHeader, csrf)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, v := range a.headers {
		req.Header.Set(k, v)
	}
	if a.cookie != nil {
		req.AddCookie(a.cookie)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// call is do as the console page does it: its CSRF token and its Origin.
func (a *adminClient) call(method, path string, body any) (int, []byte) {
	a.t.Helper()
	resp, out := a.do(method, path, body, a.csrf, a.origin)
	return resp.StatusCode, out
}

// login logs in with key and keeps the cookie and the token.
func (a *adminClient) login(key string) *http.Response {
	a.t.Helper()
	resp, out := a.do(http.MethodPost, "/admin/api/login", map[string]string{"api_key": key}, "", a.origin)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("admin login: %d %s", resp.StatusCode, out)
	}
	var s adminSessionResponse
	if err := json.Unmarshal(out, &s); err != nil {
		a.t.Fatal(err)
	}
	a.csrf = s.CSRFToken
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "sg_admin") {
			a.cookie = c
		}
	}
	if a.cookie == nil {
		a.t.Fatal("admin login set no sg_admin cookie")
	}
	return resp
}

func adminEnv(over map[string]string) map[string]string {
	env := map[string]string{"ADMIN_ENABLED": "true"}
	for k, v := range over {
		env[k] = v
	}
	return env
}

// TestAdminDisabledByDefault: without ADMIN_ENABLED, /admin and its API are
// unknown paths (404), and a valid API key opens nothing there.
func TestAdminDisabledByDefault(t *testing.T) {
	g := startGateway(t, gwOptions{})
	a := newAdminClient(t, g.http.URL)
	for _, p := range []struct{ method, path string }{
		{http.MethodGet, "/admin/"}, {http.MethodGet, "/admin"}, {http.MethodGet, "/admin/admin.js"},
		{http.MethodPost, "/admin/api/login"}, {http.MethodGet, "/admin/api/cluster"}, {http.MethodGet, "/admin/api/events"},
	} {
		resp, out := a.do(p.method, p.path, map[string]string{"api_key": testAPIKey}, "", a.origin)
		if resp.StatusCode != http.StatusNotFound || decodeError(t, out) != codeNotFound {
			t.Errorf("%s %s with the console off: %d %s, want 404 not_found", p.method, p.path, resp.StatusCode, out)
		}
	}
}

// TestAdminLoginCookieLogout: the page is served with a strict CSP; a
// wrong key is a 401; the right key sets an HttpOnly, SameSite=Strict
// cookie scoped to /admin with a bounded lifetime that holds neither the
// key nor the CSRF token; logout deletes the session on the server, so the
// old cookie is refused afterwards.
func TestAdminLoginCookieLogout(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	g := startGateway(t, gwOptions{env: adminEnv(nil), log: zap.New(core)})
	a := newAdminClient(t, g.http.URL)

	resp, page := a.do(http.MethodGet, "/admin/", nil, "", "")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`src="/admin/admin.js"`)) {
		t.Fatalf("GET /admin/: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options %q, want DENY", resp.Header.Get("X-Frame-Options"))
	}
	for _, asset := range []string{"/admin/admin.js", "/admin/admin.css"} {
		if resp, _ := a.do(http.MethodGet, asset, nil, "", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", asset, resp.StatusCode)
		}
	}
	if resp, _ := a.do(http.MethodGet, "/admin", nil, "", ""); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: %d -> %q, want 301 to /admin/", resp.StatusCode, resp.Header.Get("Location"))
	}

	if st, out := a.call(http.MethodGet, "/admin/api/session", nil); st != http.StatusUnauthorized || decodeError(t, out) != codeUnauthorized {
		t.Fatalf("session before login: %d %s", st, out)
	}
	resp, out := a.do(http.MethodPost, "/admin/api/login", map[string]string{"api_key": "wrong-key-0123456789"}, "", a.origin)
	if resp.StatusCode != http.StatusUnauthorized || decodeError(t, out) != codeUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("login with a wrong key: %d %s cookies %v", resp.StatusCode, out, resp.Cookies())
	}

	resp = a.login(testAPIKey)
	raw := resp.Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie: %q", raw)
	}
	attrs := strings.ToLower(raw[0])
	for _, want := range []string{"sg_admin=", "path=/admin", "max-age=28800", "httponly", "samesite=strict"} {
		if !strings.Contains(attrs, want) {
			t.Errorf("Set-Cookie %q lacks %s", raw[0], want)
		}
	}
	if strings.Contains(attrs, "secure") {
		t.Errorf("Set-Cookie %q is Secure on plain HTTP (development): the browser would drop it", raw[0])
	}
	if strings.Contains(raw[0], testAPIKey) || strings.Contains(raw[0], a.csrf) {
		t.Error("the cookie carries the API key or the CSRF token")
	}

	st, out := a.call(http.MethodGet, "/admin/api/session", nil)
	var info adminSessionResponse
	if st != http.StatusOK || json.Unmarshal(out, &info) != nil || info.CSRFToken != a.csrf || info.Instance != "test-a" {
		t.Fatalf("session after login: %d %s", st, out)
	}
	if st, out := a.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusOK || !bytes.Contains(out, []byte(`"self":"test-a"`)) {
		t.Errorf("cluster: %d %s", st, out)
	}
	// The instance turns ready once its own heartbeat came back through the
	// bus: poll, it need not be yet.
	waitFor(t, generous, "readyz ok through the console", func() bool {
		st, out := a.call(http.MethodGet, "/admin/api/readyz", nil)
		return st == http.StatusOK && bytes.Contains(out, []byte(`"status":"ok"`))
	})

	old := a.cookie
	resp, out = a.do(http.MethodPost, "/admin/api/logout", nil, a.csrf, a.origin)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", resp.StatusCode, out)
	}
	if cleared := resp.Header.Get("Set-Cookie"); !strings.Contains(cleared, "sg_admin=;") || !strings.Contains(strings.ToLower(cleared), "max-age=0") {
		t.Errorf("logout Set-Cookie %q does not clear the cookie", cleared)
	}
	a.cookie = old // a copy of the cookie kept by someone
	if st, out := a.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusUnauthorized {
		t.Errorf("old cookie after logout: %d %s, want 401", st, out)
	}

	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		for _, secret := range []string{testAPIKey, old.Value, a.csrf} {
			if strings.Contains(e.Message, secret) || bytes.Contains(line, []byte(secret)) {
				t.Errorf("log line %q %s holds a secret", e.Message, line)
			}
		}
	}
	for _, msg := range []string{"admin login", "admin login refused", "admin logout"} {
		if logs.FilterMessage(msg).Len() != 1 {
			t.Errorf("%d %q lines, want 1", logs.FilterMessage(msg).Len(), msg)
		}
	}
}

// TestAdminCSRFAndOrigin: a state-changing admin request needs the
// session's CSRF token and the gateway's own Origin; reads need neither.
func TestAdminCSRFAndOrigin(t *testing.T) {
	g := startGateway(t, gwOptions{env: adminEnv(map[string]string{
		// The application's page origin: allowed for WebSockets and
		// logins, never for the console.
		"GATEWAY_ALLOWED_ORIGINS": "https://app.example.com",
	})})
	_, handle := g.createSession("carol")
	a := newAdminClient(t, g.http.URL)
	a.login(testAPIKey)
	other := newAdminClient(t, g.http.URL)
	other.login(testAPIKey)

	path := "/admin/api/sessions/" + handle
	for _, tc := range []struct {
		name          string
		csrf, origin  string
		secFetch      string
		status        int
		wantInMessage string
	}{
		{name: "no token", origin: a.origin, status: http.StatusForbidden, wantInMessage: "X-CSRF-Token"},
		{name: "wrong token", csrf: strings.Repeat("A", 43), origin: a.origin, status: http.StatusForbidden, wantInMessage: "X-CSRF-Token"},
		{name: "short token", csrf: "abc", origin: a.origin, status: http.StatusForbidden, wantInMessage: "X-CSRF-Token"},
		{name: "another session's token", csrf: other.csrf, origin: a.origin, status: http.StatusForbidden, wantInMessage: "X-CSRF-Token"},
		{name: "no origin", csrf: a.csrf, status: http.StatusForbidden, wantInMessage: "Origin"},
		{name: "foreign origin", csrf: a.csrf, origin: "https://evil.example", status: http.StatusForbidden, wantInMessage: "Origin"},
		{name: "the application's allowed origin", csrf: a.csrf, origin: "https://app.example.com", status: http.StatusForbidden, wantInMessage: "Origin"},
		{name: "same origin but cross-site fetch", csrf: a.csrf, origin: a.origin, secFetch: "cross-site", status: http.StatusForbidden, wantInMessage: "Origin"},
		{name: "https origin for an http gateway", csrf: a.csrf, origin: strings.Replace(a.origin, "http://", "https://", 1), status: http.StatusForbidden, wantInMessage: "Origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.secFetch != "" {
				a.headers = map[string]string{"Sec-Fetch-Site": tc.secFetch}
				defer func() { a.headers = nil }()
			}
			resp, out := a.do(http.MethodDelete, path, nil, tc.csrf, tc.origin)
			if resp.StatusCode != tc.status || decodeError(t, out) != codeForbidden || !strings.Contains(string(out), tc.wantInMessage) {
				t.Fatalf("%d %s, want %d forbidden naming %s", resp.StatusCode, out, tc.status, tc.wantInMessage)
			}
		})
	}
	// Nothing was revoked by the refused requests; the console's own
	// request revokes, with reason "admin".
	if st, _ := g.api(http.MethodGet, "/api/v1/sessions/"+handle, nil); st != http.StatusOK {
		t.Fatalf("the session is gone after refused requests: %d", st)
	}
	if st, out := a.call(http.MethodDelete, path, nil); st != http.StatusNoContent {
		t.Fatalf("revoke with token and origin: %d %s", st, out)
	}
	if st, _ := g.api(http.MethodGet, "/api/v1/sessions/"+handle, nil); st != http.StatusNotFound {
		t.Fatalf("session still there after the console revoked it: %d", st)
	}

	// A login from a foreign origin, or none, is refused too (login CSRF).
	for _, origin := range []string{"", "https://evil.example", "https://app.example.com"} {
		resp, out := a.do(http.MethodPost, "/admin/api/login", map[string]string{"api_key": testAPIKey}, "", origin)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("login with Origin %q: %d %s", origin, resp.StatusCode, out)
		}
	}
	// A cookie that is not one of ours is no session.
	for _, v := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 44), a.csrf} {
		forged := newAdminClient(t, g.http.URL)
		forged.cookie = &http.Cookie{Name: "sg_admin", Value: v}
		if st, out := forged.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusUnauthorized {
			t.Errorf("forged cookie %q: %d %s", v, st, out)
		}
	}
}

// TestAdminSessionExpires: an admin login ends after ADMIN_SESSION_LIFETIME.
func TestAdminSessionExpires(t *testing.T) {
	clock := newFakeClock()
	g := startGateway(t, gwOptions{env: adminEnv(map[string]string{"ADMIN_SESSION_LIFETIME": "10m"}), now: clock.Now})
	a := newAdminClient(t, g.http.URL)
	resp := a.login(testAPIKey)
	if !strings.Contains(strings.ToLower(resp.Header.Get("Set-Cookie")), "max-age=600") {
		t.Errorf("Set-Cookie %q, want Max-Age=600", resp.Header.Get("Set-Cookie"))
	}
	clock.Add(10*time.Minute - time.Second)
	if st, out := a.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusOK {
		t.Fatalf("a second before expiry: %d %s", st, out)
	}
	clock.Add(time.Second)
	if st, out := a.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusUnauthorized || decodeError(t, out) != codeUnauthorized {
		t.Fatalf("at expiry: %d %s, want 401", st, out)
	}
}

// TestAdminLoginRateLimited: ten attempts per address, then one every six
// seconds (on the server's clock); right keys count as attempts too.
func TestAdminLoginRateLimited(t *testing.T) {
	clock := newFakeClock()
	core, logs := observer.New(zapcore.DebugLevel)
	g := startGateway(t, gwOptions{env: adminEnv(nil), now: clock.Now, log: zap.New(core)})
	a := newAdminClient(t, g.http.URL)
	try := func(key string) int {
		resp, _ := a.do(http.MethodPost, "/admin/api/login", map[string]string{"api_key": key}, "", a.origin)
		return resp.StatusCode
	}
	for i := range adminLoginBurst {
		if st := try("wrong-key-0123456789"); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, st)
		}
	}
	if st := try(testAPIKey); st != http.StatusTooManyRequests {
		t.Fatalf("attempt %d with the right key: %d, want 429", adminLoginBurst+1, st)
	}
	if logs.FilterMessage("admin login rate limited").Len() != 1 {
		t.Error("no \"admin login rate limited\" line")
	}
	clock.Add(adminLoginInterval)
	if st := try(testAPIKey); st != http.StatusOK {
		t.Fatalf("after %s: %d, want 200", adminLoginInterval, st)
	}
}

// TestAdminProductionNeedsTLS: in production the console answers only
// requests that came over HTTPS, which behind a load balancer means
// X-Forwarded-Proto: https from a trusted proxy; the cookie is then Secure
// with the __Secure- prefix.
func TestAdminProductionNeedsTLS(t *testing.T) {
	g := startGateway(t, gwOptions{env: adminEnv(map[string]string{
		"GATEWAY_ENV":             "production",
		"AUTH_MODE":               "webhook",
		"AUTH_WEBHOOK_URL":        "https://auth.invalid/login",
		"GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
	})})
	a := newAdminClient(t, g.http.URL)
	a.origin = strings.Replace(g.http.URL, "http://", "https://", 1)
	for _, p := range []struct{ method, path string }{{http.MethodGet, "/admin/"}, {http.MethodPost, "/admin/api/login"}, {http.MethodGet, "/admin/api/session"}} {
		for _, proto := range []string{"", "http", "https-not"} {
			a.headers = map[string]string{"X-Forwarded-Proto": proto}
			resp, out := a.do(p.method, p.path, map[string]string{"api_key": testAPIKey}, "", a.origin)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(out), "HTTPS only") {
				t.Errorf("%s %s with X-Forwarded-Proto %q: %d %s, want 403", p.method, p.path, proto, resp.StatusCode, out)
			}
		}
	}
	a.headers = map[string]string{"X-Forwarded-Proto": "https"}
	if resp, _ := a.do(http.MethodGet, "/admin/", nil, "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/ over https: %d", resp.StatusCode)
	}
	resp := a.login(testAPIKey)
	sc := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "__Secure-sg_admin=") || !strings.Contains(strings.ToLower(sc), "; secure") {
		t.Errorf("production Set-Cookie %q, want __Secure-sg_admin and Secure", sc)
	}
	if st, out := a.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusOK {
		t.Errorf("cluster over https: %d %s", st, out)
	}
	// The same cookie over plain HTTP is refused before it is even read.
	a.headers = nil
	if st, _ := a.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusForbidden {
		t.Errorf("cluster over http: %d, want 403", st)
	}
}

// TestAdminPresenceForwarded: the console's presence routes are the
// /api/v1 ones behind the admin session: unauthenticated they are a 401
// (nothing is forwarded), and authenticated they answer what /api/v1
// answers (a JSON 404 in a build without the presence API, which the page
// shows as "presence unavailable").
func TestAdminPresenceForwarded(t *testing.T) {
	g := startGateway(t, gwOptions{env: adminEnv(nil)})
	anon := newAdminClient(t, g.http.URL)
	if st, _ := anon.call(http.MethodGet, "/admin/api/presence", nil); st != http.StatusUnauthorized {
		t.Fatalf("presence without a session: %d, want 401", st)
	}
	a := newAdminClient(t, g.http.URL)
	a.login(testAPIKey)
	for _, path := range []string{"/presence?limit=5", "/users/alice/presence"} {
		wantSt, wantBody := g.api(http.MethodGet, "/api/v1"+path, nil)
		st, body := a.call(http.MethodGet, "/admin/api"+path, nil)
		if st != wantSt || !bytes.Equal(body, wantBody) {
			t.Errorf("%s: console %d %s, /api/v1 %d %s", path, st, body, wantSt, wantBody)
		}
	}
	// The forwarding never reaches /api/v1 routes the console does not list.
	if st, _ := a.call(http.MethodGet, "/admin/api/inbound", nil); st != http.StatusNotFound {
		t.Errorf("/admin/api/inbound: %d, want 404", st)
	}
}

// TestAdminEventTail: the tail streams the bus events this instance sees
// (kind, target, name, position) and never their payload.
func TestAdminEventTail(t *testing.T) {
	g := startGateway(t, gwOptions{env: adminEnv(nil)})
	a := newAdminClient(t, g.http.URL)
	a.login(testAPIKey)
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.http.URL+"/admin/api/events", nil)
	req.AddCookie(a.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": tail of test-a") {
		t.Fatalf("first line %q %v", line, err)
	}
	if st, out := a.call(http.MethodPost, "/admin/api/publish", map[string]any{
		"target": map[string]string{"user_id": "dave"}, "event": "greeting", "data": map[string]string{"secret": "payload-not-for-the-tail"},
	}); st != http.StatusAccepted {
		t.Fatalf("publish: %d %s", st, out)
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("tail ended before the message: %v", err)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if strings.Contains(data, "payload-not-for-the-tail") {
			t.Fatalf("the tail shows a payload: %s", data)
		}
		var ev tailEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("tail line %q: %v", data, err)
		}
		if ev.Kind != "message" {
			continue // heartbeats
		}
		if ev.Event != "greeting" || ev.Target == nil || ev.Target.UserID != "dave" || ev.Origin != "test-a" || ev.Stream == "" || ev.Offset != 1 {
			t.Fatalf("tail event %+v", ev)
		}
		return
	}
}
