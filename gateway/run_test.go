package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// runningGateway is a gateway served by [Server.Run] on a real listener,
// with the http.Server settings production uses.
type runningGateway struct {
	*testGateway
	base   string // http://127.0.0.1:port
	addr   string
	cancel context.CancelFunc
	done   chan error // Run's result
}

// runGateway serves a gateway with Server.Run on a free loopback port. The
// cleanup cancels Run and waits for it.
func runGateway(t *testing.T, o gwOptions) *runningGateway {
	t.Helper()
	g := buildGateway(t, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rg := &runningGateway{testGateway: g, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	rg.base = "http://" + rg.addr
	go func() { rg.done <- g.srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rg.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return rg
}

// wait returns Run's result once it has returned.
func (rg *runningGateway) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rg.done:
		rg.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// loginStatus logs user in over a fresh connection and returns the status.
func loginStatus(t *testing.T, base, user string) int {
	t.Helper()
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post(base+"/auth/login", "application/json", strings.NewReader(`{"user_id":"`+user+`","password":"x"}`))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitGoroutines polls until at most want goroutines run, or fails after a
// generous deadline with the stacks of all of them.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d (the baseline):\n%s", n, want, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowClientsLoseTheirConnection: a client that withholds or trickles
// its headers or body, or idles on a keep-alive connection, is disconnected
// by the server's timeouts, whatever the path and without any session;
// every goroutine it cost comes back, and a crowd of them does not keep a
// normal login from being answered.
func TestSlowClientsLoseTheirConnection(t *testing.T) {
	rg := runGateway(t, gwOptions{env: map[string]string{
		"HTTP_READ_TIMEOUT":  "500ms",
		"HTTP_WRITE_TIMEOUT": "2s",
		"HTTP_IDLE_TIMEOUT":  "500ms",
	}})
	const postHead = "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
	tests := []struct {
		name string
		// send writes the request; it runs in its own goroutine and stops
		// when stop is closed or a write fails.
		send func(c net.Conn, stop <-chan struct{})
	}{
		{name: "login headers then no body", send: func(c net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(c, strings.Replace(postHead, "%s", "/auth/login", 1))
		}},
		{name: "login body trickled", send: func(c net.Conn, stop <-chan struct{}) {
			trickle(c, stop, strings.Replace(postHead, "%s", "/auth/login", 1)+`{"user_id":"`)
		}},
		{name: "api body trickled without key", send: func(c net.Conn, stop <-chan struct{}) {
			trickle(c, stop, strings.Replace(postHead, "%s", "/api/v1/publish", 1)+`{"target":`)
		}},
		{name: "unknown path body withheld", send: func(c net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(c, strings.Replace(postHead, "%s", "/nowhere", 1))
		}},
		{name: "headers trickled", send: func(c net.Conn, stop <-chan struct{}) {
			trickle(c, stop, "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
		}},
		{name: "idle keep-alive after a request", send: func(c net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
		}},
	}

	// Warm up (lazily started goroutines, pools), then take the baseline.
	if st := loginStatus(t, rg.base, "warmup"); st != http.StatusOK {
		t.Fatalf("warm-up login: %d", st)
	}
	baseline := runtime.NumGoroutine()

	const perCase = 20
	stop := make(chan struct{})
	var wg sync.WaitGroup
	type result struct {
		name string
		err  error
	}
	results := make(chan result, perCase*len(tests))
	for _, tt := range tests {
		for range perCase {
			c, err := net.Dial("tcp", rg.addr)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(2)
			go func() { defer wg.Done(); tt.send(c, stop) }()
			go func() {
				defer wg.Done()
				defer c.Close()
				results <- result{tt.name, readUntilClosed(c, 20*time.Second)}
			}()
		}
	}
	// While they hang on, a normal login is answered.
	if st := loginStatus(t, rg.base, "alice"); st != http.StatusOK {
		t.Fatalf("login among slow clients: status %d", st)
	}
	for range perCase * len(tests) {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
		}
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	waitGoroutines(t, baseline)
}

// trickle writes s one byte at a time, slower than any timeout would
// allow for the whole, until stop or a write error.
func trickle(c net.Conn, stop <-chan struct{}, s string) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		b := byte('x')
		if i < len(s) {
			b = s[i]
		}
		if _, err := c.Write([]byte{b}); err != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// readUntilClosed reads (and drops) what the server sends until it closes
// the connection. It fails if the connection is still open at the
// deadline: the server never let go of it.
func readUntilClosed(c net.Conn, limit time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("the server did not close the connection")
	}
	return nil
}

// TestWebSocketOutlivesHTTPTimeouts: the HTTP server's read and write
// deadlines end with the handshake. A WebSocket keeps receiving (pings, an
// event) and being read (pongs) well past both.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	rg := runGateway(t, gwOptions{env: map[string]string{
		"HTTP_READ_TIMEOUT":  timeout.String(),
		"HTTP_WRITE_TIMEOUT": timeout.String(),
		"WS_PING_INTERVAL":   "50ms",
		"WS_PONG_TIMEOUT":    "10s",
	}})
	st, body := doJSON(t, rg.base, http.MethodPost, "/api/v1/sessions", map[string]any{"user_id": "bob"}, testAPIKey)
	if st != http.StatusCreated {
		t.Fatalf("create session: %d %s", st, body)
	}
	var sess struct{ Token string }
	_ = json.Unmarshal(body, &sess)
	upgraded := time.Now()
	w, _, err := dialWS(t, "ws://"+rg.addr+"/ws", http.Header{"Authorization": {"Bearer " + sess.Token}}, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	w.mustNext("welcome")

	// Answer pings until well past both deadlines: a stale deadline on the
	// hijacked connection would have cut it by now, whatever the load.
	pings := 0
	for pings < 3 || time.Since(upgraded) < 4*timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, b, err := w.c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("connection cut after %d pings: %v", pings, err)
		}
		if strings.Contains(string(b), `"ping"`) {
			pings++
			if err := w.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`)); err != nil {
				t.Fatalf("pong: %v", err)
			}
		}
	}
	st, body = doJSON(t, rg.base, http.MethodPost, "/api/v1/publish",
		map[string]any{"target": map[string]any{"user_id": "bob"}, "event": "late", "data": map[string]any{"n": 1}}, testAPIKey)
	if st != http.StatusAccepted {
		t.Fatalf("publish: %d %s", st, body)
	}
	if f := w.mustNext("event"); f.Event != "late" {
		t.Fatalf("got event %q", f.Event)
	}
}

// TestReadyzServedWhileDraining: once Run's ctx is done, the listener keeps
// serving: /readyz answers 503 "draining" and /ws a JSON 503 before the
// open WebSocket is closed with 1001, and Run returns after.
func TestReadyzServedWhileDraining(t *testing.T) {
	// The connection manager logs "draining connections" right before its
	// first close: hold it there until /readyz has been asked.
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "draining connections" {
			once.Do(func() { close(reached); <-release })
		}
		return nil
	})
	log := zaptest.NewLogger(t, zaptest.WrapOptions(hold))
	rg := runGateway(t, gwOptions{log: log, env: map[string]string{"DRAIN_WINDOW": "200ms"}})
	st, body := doJSON(t, rg.base, http.MethodPost, "/api/v1/sessions", map[string]any{"user_id": "carol"}, testAPIKey)
	if st != http.StatusCreated {
		t.Fatalf("create session: %d %s", st, body)
	}
	var sess struct{ Token string }
	_ = json.Unmarshal(body, &sess)
	auth := http.Header{"Authorization": {"Bearer " + sess.Token}}
	w, _, err := dialWS(t, "ws://"+rg.addr+"/ws", auth, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	w.mustNext("welcome")

	rg.cancel()
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("drain never started")
	}
	func() {
		defer close(release)
		resp, err := http.Get(rg.base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz while draining: %v", err)
		}
		var ready readyResponse
		err = json.NewDecoder(resp.Body).Decode(&ready)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || ready.Status != "draining" {
			t.Fatalf("/readyz while draining: %d %+v (%v), want 503 draining", resp.StatusCode, ready, err)
		}
		req, _ := http.NewRequest(http.MethodGet, rg.base+"/ws", nil)
		req.Header = wsHandshakeHeader()
		req.Header.Set("Authorization", auth.Get("Authorization"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("/ws while draining: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, b) != codeUnavailable {
			t.Fatalf("/ws while draining: %d %s, want 503 unavailable", resp.StatusCode, b)
		}
	}()
	if code := w.closeCode(generous); code != websocket.StatusGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if err := rg.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, err := net.Dial("tcp", rg.addr); err == nil {
		c.Close()
		t.Fatal("listener still open after Run returned")
	}
}

// wsHandshakeHeader is a valid WebSocket handshake's headers.
func wsHandshakeHeader() http.Header {
	return http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
}

// TestHeadersBounded: headers far beyond any cookie or token the gateway
// issues are refused by the server (431) instead of being buffered.
func TestHeadersBounded(t *testing.T) {
	rg := runGateway(t, gwOptions{})
	tests := []struct {
		name   string
		size   int
		status int
	}{
		{name: "8 KB header served", size: 8 << 10, status: http.StatusOK},
		{name: "200 KB header refused", size: 200 << 10, status: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, rg.base+"/healthz", nil)
			req.Header.Set("X-Filler", strings.Repeat("a", tt.size))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}
