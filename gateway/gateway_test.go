package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

func TestLoginConnectPublishLogout(t *testing.T) {
	g := startGateway(t, gwOptions{})
	runLoginFlow(t, g)
}

// The same flow against a real redis-server: Redis store and Redis bus.
func TestLoginFlowRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	g := startGateway(t, gwOptions{rdb: rdb})
	runLoginFlow(t, g)
	// A Redis dump holds no token: keys are handles, values are ciphertext.
	token, handle := g.createSession("zoe")
	id := token[:strings.IndexByte(token, '.')]
	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range keys {
		found = found || strings.HasSuffix(k, handle)
		v, _ := rdb.Dump(context.Background(), k).Result()
		if strings.Contains(k, id) || strings.Contains(v, id) || strings.Contains(v, "zoe") {
			t.Fatalf("redis key %q or its value holds the token id or plaintext", k)
		}
	}
	if !found {
		t.Fatalf("no key for handle among %v", keys)
	}
}

func runLoginFlow(t *testing.T, g *testGateway) {
	t.Helper()
	hc := g.client()
	resp := g.login(hc, "alice")
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == g.cfg.EffectiveCookieName() {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.Path != "/" || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie missing or not HttpOnly/Path=//SameSite=Lax: %+v", ck)
	}

	// GET /auth/session shows the session, never the token.
	r, err := hc.Get(g.http.URL + "/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(body), `"user_id":"alice"`) || strings.Contains(string(body), ck.Value) {
		t.Fatalf("/auth/session: %d %s", r.StatusCode, body)
	}

	ws, _, err := dialWS(t, g.wsURL(), nil, hc)
	if err != nil {
		t.Fatalf("dial with cookie: %v", err)
	}
	w := ws.mustNext("welcome")
	if w.UserID != "alice" || w.Instance != g.cfg.InstanceID || w.ConnID == "" || w.PingIntervalMS != g.cfg.WSPingInterval.Milliseconds() {
		t.Fatalf("welcome: %+v", w)
	}

	st, out := g.api(http.MethodPost, "/api/v1/publish", map[string]any{
		"target": map[string]any{"user_id": "alice"}, "event": "greeting", "data": map[string]any{"n": 1},
	})
	if st != http.StatusAccepted || !strings.Contains(string(out), `"delivered_local":1`) {
		t.Fatalf("publish: %d %s", st, out)
	}
	ev := ws.mustNext("event")
	if ev.Event != "greeting" || string(ev.Data) != `{"n":1}` || ev.ID == "" {
		t.Fatalf("event: %+v", ev)
	}

	req, _ := http.NewRequest(http.MethodPost, g.http.URL+"/auth/logout", nil)
	lr, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lr.Body.Close()
	if lr.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", lr.StatusCode)
	}
	if code := ws.closeCode(generous); code != 4500 {
		t.Fatalf("close code after logout = %d, want 4500", code)
	}
	// The old token is dead.
	if _, resp, err := dialWS(t, g.wsURL(), http.Header{"Cookie": {ck.Name + "=" + ck.Value}}, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial with logged-out cookie: err=%v resp=%v", err, resp)
	}
}

func TestWSRefusedBeforeUpgrade(t *testing.T) {
	clock := newFakeClock()
	g := startGateway(t, gwOptions{now: clock.Now, env: map[string]string{"SESSION_LIFETIME": "1m", "SESSION_IDLE_TTL": "1h"}})
	revoked, handle := g.createSession("bob")
	if st, _ := g.api(http.MethodDelete, "/api/v1/sessions/"+handle, nil); st != http.StatusNoContent {
		t.Fatalf("revoke: %d", st)
	}
	expiring, _ := g.createSession("carol")
	good, _ := g.createSession("dave")
	forged := good[:len(good)-2] + "AA"
	if forged == good {
		forged = good[:len(good)-2] + "BB"
	}

	tests := []struct {
		name   string
		header http.Header
		// advance moves the clock first (past the lifetime, not the idle TTL).
		advance time.Duration
		status  int
	}{
		{name: "no credentials", header: nil, status: 401},
		{name: "garbage token", header: http.Header{"Authorization": {"Bearer garbage"}}, status: 401},
		{name: "forged tag", header: http.Header{"Authorization": {"Bearer " + forged}}, status: 401},
		{name: "revoked session", header: http.Header{"Authorization": {"Bearer " + revoked}}, status: 401},
		{name: "bad origin", header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://evil.example"}}, status: 403},
		{name: "expired session", header: http.Header{"Authorization": {"Bearer " + expiring}}, advance: 2 * time.Minute, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Add(tc.advance)
			_, resp, err := dialWS(t, g.wsURL(), tc.header, nil)
			if err == nil {
				t.Fatal("upgrade succeeded, want refusal")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("status = %v, want %d", resp, tc.status)
			}
			b, _ := io.ReadAll(resp.Body)
			decodeError(t, b)
		})
	}
	// The same Origin as the host is allowed.
	fresh, _ := g.createSession("dave")
	w, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + fresh}, "Origin": {g.http.URL}}, nil)
	if err != nil {
		t.Fatalf("same-origin dial: %v %v", err, resp)
	}
	w.mustNext("welcome")
}

// The limiter refills once in 1000 s, so however slowly the machine sends
// the five requests, the burst of 2 is all they get: exactly 3 are refused.
func TestRateLimit(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"RATE_LIMIT_RPS": "0.001", "RATE_LIMIT_BURST": "2"}})
	statuses := map[int]int{}
	for i := 0; i < 5; i++ {
		resp, err := http.Get(g.http.URL + "/ws")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && decodeError(t, b) != codeRateLimited {
			t.Fatalf("429 body: %s", b)
		}
	}
	if statuses[http.StatusTooManyRequests] != 3 {
		t.Fatalf("5 upgrades with burst 2 and no refill: %v, want three 429s", statuses)
	}
}

func TestProtocolViolationsCloseOnlyThatConnection(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"WS_MAX_MESSAGE_BYTES": "1024"}})
	tok, _ := g.createSession("erin")
	bystander := g.dialToken(tok)
	bystander.mustNext("welcome")

	tests := []struct {
		name string
		send func(c *websocket.Conn) error
		code websocket.StatusCode
	}{
		{"oversized frame", func(c *websocket.Conn) error {
			return c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"message","data":"`+strings.Repeat("x", 4096)+`"}`))
		}, 1009},
		{"malformed JSON", func(c *websocket.Conn) error {
			return c.Write(context.Background(), websocket.MessageText, []byte(`{"type":`))
		}, 4503},
		{"unknown type", func(c *websocket.Conn) error {
			return c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"subscribe"}`))
		}, 4503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := g.dialToken(tok)
			w.mustNext("welcome")
			if err := tc.send(w.c); err != nil {
				t.Fatal(err)
			}
			if code := w.closeCode(generous); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	// The bystander of the same user still works.
	if st, out := g.api(http.MethodPost, "/api/v1/publish", map[string]any{"target": map[string]any{"user_id": "erin"}, "event": "still-here"}); st != 202 {
		t.Fatalf("publish: %d %s", st, out)
	}
	if ev := bystander.mustNext("event"); ev.Event != "still-here" {
		t.Fatalf("bystander got %+v", ev)
	}
}

// A client that stops reading overflows its queue and is closed with 4000;
// publishing never waits for it and another client gets every event. The
// fast client is kept in lockstep (each event received before the next
// publish), so however loaded the machine it is never behind; the write
// timeout is far longer than the test, so only the full queue can close
// the slow one.
func TestSlowConsumerClosedFastClientServed(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"WS_SEND_QUEUE": "8", "WS_WRITE_TIMEOUT": "10m"}})
	tok, _ := g.createSession("frank")
	slow := g.dialToken(tok)
	slow.mustNext("welcome")
	fastTok, _ := g.createSession("gina")
	fast := g.dialToken(fastTok)
	fast.mustNext("welcome")

	const n = 400
	payload := map[string]any{"blob": strings.Repeat("y", 16<<10)}
	for i := 0; i < n; i++ {
		if st, out := g.api(http.MethodPost, "/api/v1/publish", map[string]any{"target": map[string]any{"all": true}, "event": "flood", "data": payload}); st != 202 {
			t.Fatalf("publish %d: %d %s", i, st, out)
		}
		if f, err := fast.next(generous); err != nil || f.Type != "event" {
			t.Fatalf("fast client, event %d of %d: %+v, %v", i+1, n, f, err)
		}
	}
	// The slow client never read: its queue overflowed and the server closed
	// it with 4000. Reading now drains its TCP window, so the close frame
	// (or, had the server given up on it, an abrupt close) arrives.
	if code := slow.closeCode(generous); code != 4000 && code != -1 {
		t.Fatalf("slow consumer close code %d, want 4000 (or an abrupt close)", code)
	}
	// The server's own account: one queue-full close, code 4000, after
	// the queue passed half full.
	var body []byte
	waitFor(t, generous, "metrics showing one 4000 close", func() bool {
		_, body = doJSON(t, g.http.URL, "GET", "/metrics", nil, "")
		return strings.Contains(string(body), "sessiongate_queue_full_closes_total 1") &&
			regexp.MustCompile(`\nsessiongate_send_queue_high_total [1-9]`).Match(body) &&
			strings.Contains(string(body), `sessiongate_disconnects_total{code="4000",reason="slow_consumer"} 1`)
	})
}

// A connection that never answers pings is closed with 4001; one that
// answers stays. Proven by order, not by a time window: the answering
// connection is dialled first, so had its pongs not counted it would have
// been silent longer than the other and closed no later. The pong timeout
// is long next to the ping interval, so the answering client never comes
// near it, however loaded the machine.
func TestMissingPongClosed4001(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"WS_PING_INTERVAL": "200ms", "WS_PONG_TIMEOUT": "3s"}})
	tok, _ := g.createSession("hank")
	alive := g.dialToken(tok)
	alive.mustNext("welcome")
	pings := make(chan struct{}, 1024)
	closed := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			_, b, err := alive.c.Read(ctx)
			if err != nil {
				closed <- err
				return
			}
			if strings.Contains(string(b), `"ping"`) {
				_ = alive.c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
				pings <- struct{}{}
			}
		}
	}()
	// Read (so the queue does not fill) but never answer pings.
	silent := g.dialToken(tok)
	silent.mustNext("welcome")
	if code := silent.closeCode(generous); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
	// The answering connection is still open: it gets the next pings (two:
	// one may have been queued before a close that came in the same sweep).
	for len(pings) > 0 {
		<-pings
	}
	for range 2 {
		select {
		case <-pings:
		case err := <-closed:
			t.Fatalf("answering client was closed: %v (code %d)", err, websocket.CloseStatus(err))
		case <-time.After(generous):
			t.Fatal("answering client got no ping after the silent one was closed")
		}
	}
}

func TestDrainClosesAllWith1001NoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := startGateway(t, gwOptions{env: map[string]string{"DRAIN_WINDOW": "300ms"}})
	tok, _ := g.createSession("ivy")
	var conns []*wsConn
	for i := 0; i < 10; i++ {
		w := g.dialToken(tok)
		w.mustNext("welcome")
		conns = append(conns, w)
	}
	var wg sync.WaitGroup
	codes := make([]websocket.StatusCode, len(conns))
	for i, w := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = w.closeCode(generous) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- g.srv.Shutdown(ctx) }()
	// /readyz says draining while connections close.
	deadline := time.Now().Add(generous)
	for {
		resp, err := http.Get(g.http.URL + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 && strings.Contains(string(b), "draining") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never reported draining")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 1001 {
			t.Fatalf("conn %d closed with %d, want 1001", i, c)
		}
	}
	if err := <-shutdownDone; err != nil {
		t.Fatal(err)
	}
	// New upgrades are refused while/after draining.
	if _, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial after drain: %v %v", err, resp)
	}
	for _, w := range conns {
		w.c.CloseNow()
	}
	g.http.CloseClientConnections()
	g.http.Close()
	http.DefaultClient.CloseIdleConnections()
}

func TestAPIKeys(t *testing.T) {
	g := startGateway(t, gwOptions{})
	tests := []struct {
		name, key string
		status    int
	}{
		{"missing", "", 401},
		{"wrong", "wrong-key-0123456789abcdef", 401},
		{"prefix of the right key", testAPIKey[:10], 401},
		{"right", testAPIKey, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := doJSON(t, g.http.URL, http.MethodGet, "/api/v1/cluster", nil, tc.key)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			if st == 401 && decodeError(t, body) != codeUnauthorized {
				t.Fatalf("body %s", body)
			}
		})
	}
}

func TestAPIValidationAndErrors(t *testing.T) {
	g := startGateway(t, gwOptions{})
	_, handle := g.createSession("jack")
	tests := []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"create without user", "POST", "/api/v1/sessions", map[string]any{}, 400},
		{"create with control chars", "POST", "/api/v1/sessions", map[string]any{"user_id": "a\nb"}, 400},
		{"create with a C1 control char", "POST", "/api/v1/sessions", map[string]any{"user_id": "a\u0085b"}, 400},
		{"create with array data", "POST", "/api/v1/sessions", map[string]any{"user_id": "a", "data": []int{1}}, 400},
		{"create with unknown field", "POST", "/api/v1/sessions", map[string]any{"user_id": "a", "role": "admin"}, 400},
		{"get bad handle", "GET", "/api/v1/sessions/xyz", nil, 400},
		{"get unknown handle", "GET", "/api/v1/sessions/" + strings.Repeat("ab", 32), nil, 404},
		{"get handle", "GET", "/api/v1/sessions/" + handle, nil, 200},
		{"publish without target", "POST", "/api/v1/publish", map[string]any{"event": "x"}, 400},
		{"publish two targets", "POST", "/api/v1/publish", map[string]any{"target": map[string]any{"all": true, "user_id": "a"}, "event": "x"}, 400},
		{"publish without event", "POST", "/api/v1/publish", map[string]any{"target": map[string]any{"all": true}}, 400},
		{"publish bad handle", "POST", "/api/v1/publish", map[string]any{"target": map[string]any{"handle": "nope"}, "event": "x"}, 400},
		{"list sessions", "GET", "/api/v1/users/jack/sessions", nil, 200},
		{"revoke unknown", "DELETE", "/api/v1/sessions/" + strings.Repeat("cd", 32), nil, 404},
		{"revoke user", "DELETE", "/api/v1/users/jack/sessions", nil, 200},
		{"unknown route", "GET", "/api/v1/nope", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := g.api(tc.method, tc.path, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			if st >= 400 {
				decodeError(t, body)
			}
		})
	}
	// Oversized body: 413 with a JSON error.
	big := strings.Repeat("x", 100<<10)
	st, body := g.api("POST", "/api/v1/sessions", map[string]any{"user_id": "a", "data": map[string]any{"x": big}})
	if st != http.StatusRequestEntityTooLarge || decodeError(t, body) != codeTooLarge {
		t.Fatalf("oversized: %d %s", st, body)
	}
	// Wrong method on a known path.
	st, body = doJSON(t, g.http.URL, "GET", "/auth/logout", nil, "")
	if st != 405 || decodeError(t, body) != codeMethodNotAllowed {
		t.Fatalf("405: %d %s", st, body)
	}
	// Unknown top-level path.
	st, body = doJSON(t, g.http.URL, "GET", "/nope", nil, "")
	if st != 404 || decodeError(t, body) != codeNotFound {
		t.Fatalf("404: %d %s", st, body)
	}
}

func TestListAndRevokeUser(t *testing.T) {
	g := startGateway(t, gwOptions{})
	t1, _ := g.createSession("kate")
	t2, _ := g.createSession("kate")
	a, b := g.dialToken(t1), g.dialToken(t2)
	a.mustNext("welcome")
	b.mustNext("welcome")
	st, body := g.api("GET", "/api/v1/users/kate/sessions", nil)
	var list struct {
		Sessions []struct {
			Handle      string `json:"handle"`
			Connections int    `json:"connections_local"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || len(list.Sessions) != 2 {
		t.Fatalf("list: %d %s", st, body)
	}
	for _, s := range list.Sessions {
		if s.Connections != 1 {
			t.Fatalf("session %s has %d connections, want 1", s.Handle, s.Connections)
		}
	}
	if st, body := g.api("DELETE", "/api/v1/users/kate/sessions", nil); st != 200 || !strings.Contains(string(body), `"revoked":2`) {
		t.Fatalf("revoke user: %d %s", st, body)
	}
	for _, w := range []*wsConn{a, b} {
		if code := w.closeCode(generous); code != 4500 {
			t.Fatalf("close %d, want 4500", code)
		}
	}
}

func TestCSRF(t *testing.T) {
	g := startGateway(t, gwOptions{})
	hc := g.client()
	g.login(hc, "leo")
	tests := []struct {
		name, path, ctype string
		header            map[string]string
		status            int
	}{
		{"cross-site logout by Sec-Fetch-Site", "/auth/logout", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"cross-site logout by Origin", "/auth/logout", "", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site login", "/auth/login", "application/json", map[string]string{"Origin": "https://evil.example"}, 403},
		{"form login", "/auth/login", "application/x-www-form-urlencoded", nil, 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", g.http.URL+tc.path, strings.NewReader(`{"user_id":"mallory"}`))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
		})
	}
	// The session survived the forged logout.
	resp, err := hc.Get(g.http.URL + "/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("session gone after refused cross-site logout: %d", resp.StatusCode)
	}
}

func TestLoginRotatesSession(t *testing.T) {
	g := startGateway(t, gwOptions{})
	hc := g.client()
	first := g.login(hc, "mia").Cookies()[0].Value
	second := g.login(hc, "mia").Cookies()[0].Value
	if first == second {
		t.Fatal("login did not rotate the session token")
	}
	if _, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + first}}, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("old token still valid after re-login: %v", err)
	}
}

func TestPanicIsJSON500(t *testing.T) {
	g := startGateway(t, gwOptions{})
	g.srv.echo.GET("/test-panic", func(c echo.Context) error { panic("boom") })
	st, body := doJSON(t, g.http.URL, "GET", "/test-panic", nil, "")
	if st != 500 || decodeError(t, body) != codeInternal {
		t.Fatalf("panic: %d %s", st, body)
	}
	// The process is alive and serving.
	if st, _ := doJSON(t, g.http.URL, "GET", "/healthz", nil, ""); st != 200 {
		t.Fatalf("healthz after panic: %d", st)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	g := startGateway(t, gwOptions{})
	tok, _ := g.createSession("nina")
	g.dialToken(tok).mustNext("welcome")
	st, body := doJSON(t, g.http.URL, "GET", "/metrics", nil, "")
	for _, name := range []string{"sessiongate_connections_open 1", "sessiongate_connects_total 1", "sessiongate_handshake_seconds_bucket", "process_resident_memory_bytes"} {
		if st != 200 || !strings.Contains(string(body), name) {
			t.Fatalf("/metrics lacks %q", name)
		}
	}
	deadline := time.Now().Add(generous)
	for {
		st, body = doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
