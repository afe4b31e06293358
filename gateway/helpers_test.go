package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/internal/wiring"
	"github.com/sessiongate/sessiongate/redisconn"
	"github.com/sessiongate/sessiongate/session"
)

const testAPIKey = "test-api-key-0123456789abcdef"

// generous bounds every wait for something that must happen: long enough
// that a loaded machine (-race, stress-ng on every core) never hits it, so
// it only ever catches a hang. Tests assert order, never speed.
const generous = 30 * time.Second

// testEnv is the environment every test gateway starts from.
func testEnv(over map[string]string) map[string]string {
	env := map[string]string{
		"GATEWAY_ENV":               "development",
		"GATEWAY_INSTANCE_ID":       "test-a",
		"GATEWAY_API_KEYS":          testAPIKey,
		"SESSION_SECRET":            "test-secret-0123456789abcdef0123456789abcdef",
		"SESSION_ENCRYPTION_KEY":    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"RATE_LIMIT_RPS":            "1000",
		"RATE_LIMIT_BURST":          "1000",
		"WS_PING_INTERVAL":          "25s",
		"DRAIN_WINDOW":              "200ms",
		"PUBSUB_HEARTBEAT_INTERVAL": "200ms",
		"RECONCILE_INTERVAL":        "1s",
		"LOG_LEVEL":                 "debug",
	}
	for k, v := range over {
		env[k] = v
	}
	return env
}

type testGateway struct {
	t     testing.TB
	srv   *Server
	http  *httptest.Server
	cfg   config.Config
	store session.Store
	codec *session.Codec
	parts wiring.Parts
}

type gwOptions struct {
	env   map[string]string
	rdb   redis.UniversalClient // nil: embedded mode
	redis *redisconn.Manager
	auth  Authenticator
	log   *zap.Logger
	// wrap, when set, wraps the session store (to simulate store behaviour).
	wrap func(session.Store) session.Store
	// now, when set, is the clock of the gateway and its session store.
	now func() time.Time
}

// fakeClock is a clock the test moves by hand.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New(time.Now()) }

func startGateway(t testing.TB, o gwOptions) *testGateway {
	t.Helper()
	g := buildGateway(t, o)
	g.srv.Start()
	g.http = httptest.NewServer(g.srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.srv.Shutdown(ctx)
		g.http.Close()
	})
	if o.rdb == nil {
		// The in-process bus drops what is published before it runs, as
		// Redis pub/sub drops what comes before a SUBSCRIBE. A real
		// deployment sends no traffic before /readyz, which waits for the
		// bus; the tests that publish at once wait for it here instead.
		waitFor(t, generous, "the in-process bus subscribed", g.srv.subscribed.Load)
	}
	return g
}

// buildGateway builds a gateway without serving or starting it.
func buildGateway(t testing.TB, o gwOptions) *testGateway {
	t.Helper()
	env := testEnv(o.env)
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := o.log
	if log == nil {
		log = zaptest.NewLogger(t).Named(cfg.InstanceID)
	}
	// Every line is also checked against the log schema (TestMain), with the
	// instance field every production line carries.
	log = logRecorder.Tee(log).With(zap.String("instance", cfg.InstanceID))
	gatewaysBuilt.Add(1)
	parts, err := wiring.Build(cfg, o.rdb, log, o.now)
	if err != nil {
		t.Fatal(err)
	}
	codec := parts.Codec
	d := Deps{Log: log, Codec: parts.Codec, Store: parts.Store, Bus: parts.Bus, History: parts.History, Inbound: parts.Inbound, Presence: parts.Presence, Auth: o.auth, Redis: o.redis, Now: o.now}
	if d.Auth == nil {
		d.Auth = DevAuthenticator{}
	}
	if o.wrap != nil {
		d.Store = o.wrap(d.Store)
	}
	srv, err := New(ConfigFrom(cfg), d)
	if err != nil {
		t.Fatal(err)
	}
	return &testGateway{t: t, srv: srv, cfg: cfg, store: d.Store, codec: codec, parts: parts}
}

func (g *testGateway) wsURL() string { return "ws" + strings.TrimPrefix(g.http.URL, "http") + "/ws" }

// client is a browser-like HTTP client with a cookie jar.
func (g *testGateway) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func (g *testGateway) login(c *http.Client, user string) *http.Response {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.http.URL+"/auth/login", strings.NewReader(`{"user_id":"`+user+`","password":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("login: status %d", resp.StatusCode)
	}
	return resp
}

// api calls the server API with the test key.
func (g *testGateway) api(method, path string, body any) (int, []byte) {
	g.t.Helper()
	return doJSON(g.t, g.http.URL, method, path, body, testAPIKey)
}

func doJSON(t testing.TB, base, method, path string, body any, key string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// createSession makes a session through the server API and returns its token and handle.
func (g *testGateway) createSession(user string) (token, handle string) {
	g.t.Helper()
	st, body := g.api(http.MethodPost, "/api/v1/sessions", map[string]any{"user_id": user})
	if st != http.StatusCreated {
		g.t.Fatalf("create session: %d %s", st, body)
	}
	var out struct{ Token, Handle string }
	if err := json.Unmarshal(body, &out); err != nil {
		g.t.Fatal(err)
	}
	return out.Token, out.Handle
}

// wsConn is a test WebSocket client.
type wsConn struct {
	t  testing.TB
	c  *websocket.Conn
	hr *http.Response
}

func dialWS(t testing.TB, url string, h http.Header, hc *http.Client) (*wsConn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, HTTPClient: hc})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	w := &wsConn{t: t, c: c, hr: resp}
	t.Cleanup(func() { c.CloseNow() })
	return w, resp, nil
}

func (g *testGateway) dialToken(token string) *wsConn {
	g.t.Helper()
	w, resp, err := dialWS(g.t, g.wsURL(), http.Header{"Authorization": {"Bearer " + token}}, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		g.t.Fatalf("dial: %v (status %d)", err, status)
	}
	return w
}

type frame struct {
	Type           string          `json:"type"`
	ConnID         string          `json:"conn_id"`
	UserID         string          `json:"user_id"`
	Instance       string          `json:"instance"`
	PingIntervalMS int64           `json:"ping_interval_ms"`
	ID             string          `json:"id"`
	Event          string          `json:"event"`
	Data           json.RawMessage `json:"data"`
	Stream         string          `json:"stream"`
	Epoch          string          `json:"epoch"`
	Offset         uint64          `json:"offset"`
	Positions      map[string]struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	} `json:"positions"`
}

// next reads the next frame that is not a ping.
func (w *wsConn) next(timeout time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return frame{}, err
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			w.t.Fatalf("server sent non-JSON %q", b)
		}
		if f.Type == "ping" {
			continue
		}
		return f, nil
	}
}

func (w *wsConn) mustNext(typ string) frame {
	w.t.Helper()
	f, err := w.next(generous)
	if err != nil {
		w.t.Fatalf("reading %s: %v", typ, err)
	}
	if f.Type != typ {
		w.t.Fatalf("got frame %q, want %q", f.Type, typ)
	}
	return f
}

// closeCode reads until the connection closes and returns the close code.
func (w *wsConn) closeCode(timeout time.Duration) websocket.StatusCode {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, _, err := w.c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func decodeError(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a JSON error body: %q", body)
	}
	return e.Error.Code
}
