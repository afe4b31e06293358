package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// rawPost sends body verbatim (no re-encoding) with the API key.
func rawPost(t *testing.T, base, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestBodiesAreOneJSONObject: every body the gateway parses is exactly one
// JSON object; a second object or trailing bytes are a 400 with a JSON
// error, never silently ignored. Publish data is an object, null or absent.
func TestBodiesAreOneJSONObject(t *testing.T) {
	g := startGateway(t, gwOptions{})
	const (
		create  = `{"user_id":"ann"}`
		publish = `{"target":{"all":true},"event":"e"}`
		login   = `{"user_id":"ann","password":"x"}`
	)
	tests := []struct {
		name   string
		path   string
		body   string
		status int
	}{
		{name: "create valid", path: "/api/v1/sessions", body: create, status: 201},
		{name: "create trailing whitespace", path: "/api/v1/sessions", body: create + " \r\n\t", status: 201},
		{name: "create trailing garbage", path: "/api/v1/sessions", body: create + "garbage", status: 400},
		{name: "create two objects", path: "/api/v1/sessions", body: create + create, status: 400},
		{name: "create two objects spaced", path: "/api/v1/sessions", body: create + "\n" + `{"user_id":"bob"}`, status: 400},
		{name: "create trailing brace", path: "/api/v1/sessions", body: create + "}", status: 400},
		{name: "create trailing number", path: "/api/v1/sessions", body: create + " 1", status: 400},
		{name: "create array", path: "/api/v1/sessions", body: `[` + create + `]`, status: 400},
		{name: "create null", path: "/api/v1/sessions", body: `null`, status: 400},
		{name: "create empty", path: "/api/v1/sessions", body: ``, status: 400},
		{name: "create unknown field", path: "/api/v1/sessions", body: `{"user_id":"ann","admin":true}`, status: 400},
		{name: "publish valid", path: "/api/v1/publish", body: publish, status: 202},
		{name: "publish trailing garbage", path: "/api/v1/publish", body: publish + "x", status: 400},
		{name: "publish two objects", path: "/api/v1/publish", body: publish + publish, status: 400},
		{name: "publish data object", path: "/api/v1/publish", body: `{"target":{"all":true},"event":"e","data":{"n":1}}`, status: 202},
		{name: "publish data null", path: "/api/v1/publish", body: `{"target":{"all":true},"event":"e","data":null}`, status: 202},
		{name: "publish data number", path: "/api/v1/publish", body: `{"target":{"all":true},"event":"e","data":1}`, status: 400},
		{name: "publish data string", path: "/api/v1/publish", body: `{"target":{"all":true},"event":"e","data":"x"}`, status: 400},
		{name: "publish data array", path: "/api/v1/publish", body: `{"target":{"all":true},"event":"e","data":[1]}`, status: 400},
		{name: "publish data true", path: "/api/v1/publish", body: `{"target":{"all":true},"event":"e","data":true}`, status: 400},
		{name: "login valid", path: "/auth/login", body: login, status: 200},
		{name: "login trailing garbage", path: "/auth/login", body: login + "x", status: 400},
		{name: "login two objects", path: "/auth/login", body: login + login, status: 400},
		{name: "login array", path: "/auth/login", body: `[` + login + `]`, status: 400},
		{name: "login string", path: "/auth/login", body: `"ann"`, status: 400},
		{name: "login empty", path: "/auth/login", body: ``, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := rawPost(t, g.http.URL, tt.path, tt.body)
			if st != tt.status {
				t.Fatalf("status %d, want %d: %s", st, tt.status, b)
			}
			if st >= 400 && decodeError(t, b) != codeBadRequest {
				t.Fatalf("error code: %s", b)
			}
		})
	}
}

// TestHandshakeErrorsAreJSON: a request to /ws that is not a valid
// WebSocket handshake gets the gateway's JSON error, with the headers RFC
// 6455 asks for, before any session check; the access log records it.
func TestHandshakeErrorsAreJSON(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	g := startGateway(t, gwOptions{log: zap.New(core)})
	tok, _ := g.createSession("ann")
	valid := wsHandshakeHeader()
	with := func(key, value string) http.Header {
		h := valid.Clone()
		if value == "" {
			h.Del(key)
		} else {
			h.Set(key, value)
		}
		return h
	}
	tests := []struct {
		name       string
		method     string
		header     http.Header
		auth       bool
		status     int
		code       string
		wantHeader [2]string // a response header and its value
	}{
		{name: "plain GET", header: http.Header{}, status: 426, code: codeUpgradeRequired, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "plain GET with session", header: http.Header{}, auth: true, status: 426, code: codeUpgradeRequired, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "no Connection upgrade", header: with("Connection", "keep-alive"), auth: true, status: 426, code: codeUpgradeRequired, wantHeader: [2]string{"Connection", "Upgrade"}},
		{name: "no Upgrade header", header: with("Upgrade", ""), auth: true, status: 426, code: codeUpgradeRequired, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "Upgrade to h2c", header: with("Upgrade", "h2c"), auth: true, status: 426, code: codeUpgradeRequired, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "bad version", header: with("Sec-Websocket-Version", "8"), auth: true, status: 400, code: codeBadRequest, wantHeader: [2]string{"Sec-Websocket-Version", "13"}},
		{name: "missing version", header: with("Sec-Websocket-Version", ""), auth: true, status: 400, code: codeBadRequest, wantHeader: [2]string{"Sec-Websocket-Version", "13"}},
		{name: "missing key", header: with("Sec-Websocket-Key", ""), auth: true, status: 400, code: codeBadRequest},
		{name: "key not base64", header: with("Sec-Websocket-Key", "not base64!"), auth: true, status: 400, code: codeBadRequest},
		{name: "key wrong length", header: with("Sec-Websocket-Key", "AAAA"), auth: true, status: 400, code: codeBadRequest},
		{name: "bad version without session", header: with("Sec-Websocket-Version", "8"), status: 400, code: codeBadRequest},
		{name: "valid handshake without session", header: valid, status: 401, code: codeUnauthorized},
		{name: "POST", method: http.MethodPost, header: valid, auth: true, status: 405, code: codeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.TakeAll()
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, g.http.URL+"/ws", nil)
			req.Header = tt.header.Clone()
			if tt.auth {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q, want JSON: %s", ct, b)
			}
			if code := decodeError(t, b); code != tt.code {
				t.Fatalf("error code %q, want %q", code, tt.code)
			}
			if k := tt.wantHeader[0]; k != "" && resp.Header.Get(k) != tt.wantHeader[1] {
				t.Fatalf("header %s = %q, want %q", k, resp.Header.Get(k), tt.wantHeader[1])
			}
			lines := logs.FilterMessage("http request").FilterField(zap.String("path", "/ws")).FilterField(zap.Int("status", tt.status)).All()
			if len(lines) != 1 {
				t.Fatalf("%d access log lines for /ws %d, want 1; all lines: %v", len(lines), tt.status, logs.All())
			}
		})
	}
}

// TestRequestIDBounded: a client-supplied X-Request-Id is echoed and logged
// only when it is a short token; anything else is replaced by a fresh id.
func TestRequestIDBounded(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	g := startGateway(t, gwOptions{log: zap.New(core)})
	tests := []struct {
		name string
		id   string
		keep bool
	}{
		{name: "valid id kept", id: "req-1.A_b", keep: true},
		{name: "64 characters kept", id: strings.Repeat("a", 64), keep: true},
		{name: "65 characters replaced", id: strings.Repeat("a", 65)},
		{name: "100 KB replaced", id: strings.Repeat("x", 100<<10)},
		{name: "tab replaced", id: "a\tb"},
		{name: "C1 control replaced", id: "a\u0085b"},
		{name: "bidi override replaced", id: "abc\u202edef"},
		{name: "space replaced", id: "a b"},
		{name: "quote replaced", id: `a"b`},
		{name: "raw high byte replaced", id: "a\xffb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.TakeAll()
			req, _ := http.NewRequest(http.MethodGet, g.http.URL+"/nope", nil)
			req.Header.Set("X-Request-Id", tt.id)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-Id")
			if tt.keep && got != tt.id {
				t.Fatalf("X-Request-Id %q, want the client's %q", got, tt.id)
			}
			if !tt.keep && (got == tt.id || !validRequestID(got)) {
				t.Fatalf("X-Request-Id %.80q, want a fresh short id", got)
			}
			lines := logs.FilterMessage("http request").All()
			if len(lines) != 1 {
				t.Fatalf("%d access log lines, want 1", len(lines))
			}
			if logged := lines[0].ContextMap()["request_id"]; logged != got {
				t.Fatalf("logged request_id %.80q, want %q", logged, got)
			}
		})
	}
	t.Run("missing id generated", func(t *testing.T) {
		resp, err := http.Get(g.http.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if id := resp.Header.Get("X-Request-Id"); !validRequestID(id) || len(id) != 32 {
			t.Fatalf("generated X-Request-Id %q", id)
		}
	})
}

// TestClientValuesInLogsBounded: client-supplied strings that reach a log
// line (path, method, Origin) are clipped, so a large request cannot make
// a log line its size.
func TestClientValuesInLogsBounded(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	g := startGateway(t, gwOptions{log: zap.New(core)})
	tok, _ := g.createSession("ann")
	huge := strings.Repeat("é", 50<<10) // 100 KB, multi-byte: the cut must stay valid UTF-8
	tests := []struct {
		name    string
		method  string
		path    string
		header  http.Header
		message string // the log line carrying the value
		field   string
	}{
		{name: "path of a 404", method: http.MethodGet, path: "/" + huge, message: "http request", field: "path"},
		{name: "method of a 405", method: strings.Repeat("X", 100<<10), path: "/auth/session", message: "http request", field: "method"},
		{name: "origin of a websocket", method: http.MethodGet, path: "/ws", message: "cross-origin websocket refused", field: "origin",
			header: func() http.Header {
				h := wsHandshakeHeader()
				h.Set("Authorization", "Bearer "+tok)
				h.Set("Origin", "https://"+huge)
				return h
			}()},
		{name: "origin of a login", method: http.MethodPost, path: "/auth/login", message: "cross-site login refused", field: "origin",
			header: http.Header{"Origin": {"https://" + huge}, "Content-Type": {"application/json"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.TakeAll()
			req, err := http.NewRequest(tt.method, g.http.URL+tt.path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			lines := logs.FilterMessage(tt.message).All()
			if len(lines) == 0 {
				t.Fatalf("no %q log line (status %d)", tt.message, resp.StatusCode)
			}
			for _, l := range lines {
				v, _ := l.ContextMap()[tt.field].(string)
				if len(v) > maxLoggedValue+32 || !utf8.ValidString(v) {
					t.Fatalf("%q logs %s of %d bytes (valid UTF-8: %v)", tt.message, tt.field, len(v), utf8.ValidString(v))
				}
			}
		})
	}
}

// TestTokenInPathNotLogged: a session token pasted into a URL path (a
// client that confuses the token with the handle, or a mistyped route) is
// a credential: the access log must not carry it.
func TestTokenInPathNotLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	g := startGateway(t, gwOptions{log: zap.New(core)})
	tok, _ := g.createSession("ann")
	for _, path := range []string{"/api/v1/sessions/" + tok, "/" + tok, "/auth/session/" + tok + "/x"} {
		logs.TakeAll()
		st, _ := g.api(http.MethodDelete, path, nil)
		if st == http.StatusNoContent || st == http.StatusOK {
			t.Fatalf("DELETE %s: %d, want a refusal", path, st)
		}
		lines := logs.FilterMessage("http request").All()
		if len(lines) != 1 {
			t.Fatalf("%d access log lines, want 1", len(lines))
		}
		for _, l := range logs.All() {
			for k, v := range l.ContextMap() {
				if s, ok := v.(string); ok && strings.Contains(s, tok) {
					t.Fatalf("%q logs the token in %s: %q", l.Message, k, s)
				}
			}
		}
	}
}
