package connmgr

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// eventually is the generous bound for anything the tests wait for.
const eventually = 15 * time.Second

type closeEvent struct {
	info Info
	code CloseCode
}

// recorder implements Hooks and remembers what happened.
type recorder struct {
	mu       sync.Mutex
	opens    int
	closes   []closeEvent
	messages []string
	changed  chan struct{} // receives a token after every close
	sent     atomic.Int64
	dropped  atomic.Int64
	// afterSent, when set, runs in OnSent, in the flush goroutine between
	// two writes of a run.
	afterSent atomic.Pointer[func()]
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}, 1)}
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		OnOpen: func(*Info) {
			r.mu.Lock()
			r.opens++
			r.mu.Unlock()
		},
		OnClose: func(info *Info, code CloseCode, dur time.Duration) {
			r.mu.Lock()
			r.closes = append(r.closes, closeEvent{info: *info, code: code})
			r.mu.Unlock()
			select {
			case r.changed <- struct{}{}:
			default:
			}
		},
		OnMessage: func(info *Info, msg ClientMessage) []byte {
			r.mu.Lock()
			r.messages = append(r.messages, info.UserID+":"+string(msg.Data))
			r.mu.Unlock()
			if msg.ID != "" {
				return EncodeAck(msg.ID, "q-"+msg.ID)
			}
			return nil
		},
		OnSent: func(n int) {
			r.sent.Add(int64(n))
			if f := r.afterSent.Load(); f != nil {
				(*f)()
			}
		},
		OnDropped: func(n int) { r.dropped.Add(int64(n)) },
	}
}

// closeCode waits for the OnClose of the connection with the given id.
func (r *recorder) closeCode(t *testing.T, connID string) CloseCode {
	t.Helper()
	deadline := time.After(eventually)
	for {
		r.mu.Lock()
		for _, ev := range r.closes {
			if ev.info.ID == connID {
				r.mu.Unlock()
				return ev.code
			}
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no OnClose for connection %q", connID)
		}
	}
}

func (r *recorder) snapshot() (opens int, closes []closeEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opens, append([]closeEvent(nil), r.closes...)
}

// harness is a real HTTP server that accepts WebSockets and hands them to a
// Manager, with Run going.
type harness struct {
	t         testing.TB
	m         *Manager
	rec       *recorder
	srv       *httptest.Server
	serveErrs chan error
	runDone   chan struct{}
	// start, when set, makes the server upgrade with UpgradeWith(start).
	start atomic.Pointer[func() Start]
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessLog(t, cfg, zaptest.NewLogger(t))
}

func newHarnessLog(t testing.TB, cfg Config, log *zap.Logger) *harness {
	t.Helper()
	return newHarnessClock(t, cfg, log, nil)
}

// newFakeClockHarness is a harness whose manager runs on a fake clock the
// test moves; at cleanup the clock turns to auto mode so Shutdown's drain
// does not wait for it.
func newFakeClockHarness(t *testing.T, cfg Config) (*harness, *fakeClock) {
	t.Helper()
	fc := newFakeClock()
	return newHarnessClock(t, cfg, zaptest.NewLogger(t), fc), fc
}

func newHarnessClock(t testing.TB, cfg Config, log *zap.Logger, fc *fakeClock) *harness {
	t.Helper()
	h := &harness{
		t:         t,
		rec:       newRecorder(),
		serveErrs: make(chan error, 1024),
		runDone:   make(chan struct{}),
	}
	if cfg.DrainWindow == 0 {
		cfg.DrainWindow = 10 * time.Millisecond // keep cleanups fast
	}
	var clk clock = systemClock{}
	if fc != nil {
		clk = fc
	}
	h.m = newManager(cfg, log, h.rec.hooks(), clk)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		info := Info{ID: q.Get("id"), UserID: q.Get("user"), Handle: q.Get("handle"), Remote: r.RemoteAddr}
		if ms := q.Get("expire_ms"); ms != "" {
			n, _ := strconv.Atoi(ms)
			info.ExpiresAt = time.Now().Add(time.Duration(n) * time.Millisecond)
		}
		// The production path (Upgrade) unless a test asks for Serve or Start.
		if start := h.start.Load(); start != nil {
			h.serveErrs <- h.m.UpgradeWith(w, r, info, *start)
			return
		}
		if q.Get("serve") == "" && q.Get("start") == "" {
			h.serveErrs <- h.m.Upgrade(w, r, info)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		if q.Get("start") != "" {
			h.serveErrs <- h.m.Start(context.Background(), ws, info)
			return
		}
		h.serveErrs <- h.m.Serve(r.Context(), ws, info)
	}))
	t.Cleanup(h.srv.Close) // registered first: runs after Shutdown below

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(h.runDone)
		h.m.Run(ctx)
	}()
	t.Cleanup(func() {
		if fc != nil {
			fc.setAuto()
		}
		sctx, scancel := context.WithTimeout(context.Background(), eventually)
		defer scancel()
		if err := h.m.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		<-h.runDone
	})
	return h
}

// client is a test WebSocket client.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	welcome frame
}

// frame is any server frame, decoded.
type frame struct {
	Type           string          `json:"type"`
	ID             string          `json:"id"`
	Event          string          `json:"event"`
	Data           json.RawMessage `json:"data"`
	ConnID         string          `json:"conn_id"`
	UserID         string          `json:"user_id"`
	Instance       string          `json:"instance"`
	PingIntervalMS int64           `json:"ping_interval_ms"`
}

// dial connects as user/handle, reads the welcome frame (so the connection
// is registered when dial returns) and closes the client at cleanup.
func (h *harness) dial(user, handle string, extra ...string) *client {
	h.t.Helper()
	c := h.dialRaw(user, handle, extra...)
	f, err := c.read()
	if err != nil {
		h.t.Fatalf("read welcome: %v", err)
	}
	if f.Type != "welcome" {
		h.t.Fatalf("first frame type = %q, want welcome", f.Type)
	}
	c.welcome = f
	return c
}

// dialRaw connects without reading anything.
func (h *harness) dialRaw(user, handle string, extra ...string) *client {
	h.t.Helper()
	q := url.Values{"user": {user}, "handle": {handle}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	h.t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: h.t, ws: ws}
}

// read returns the next frame.
func (c *client) read() (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.MessageText {
		return frame{}, errors.New("binary frame from server")
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	return f, nil
}

// mustRead returns the next frame or fails the test.
func (c *client) mustRead() frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// readUntilClose reads frames until the connection closes and returns the
// event ids seen and the close status.
func (c *client) readUntilClose() (events []string, status websocket.StatusCode) {
	c.t.Helper()
	for {
		f, err := c.read()
		if err != nil {
			return events, websocket.CloseStatus(err)
		}
		if f.Type == "event" {
			events = append(events, f.ID)
		}
	}
}

// events reads until the event with id stop and returns the ids of the events
// seen before it, skipping pings.
func (c *client) eventsUntil(stop string) []string {
	c.t.Helper()
	var ids []string
	for {
		f := c.mustRead()
		if f.Type != "event" {
			continue
		}
		if f.ID == stop {
			return ids
		}
		ids = append(ids, f.ID)
	}
}

func (c *client) write(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// conn returns the registered connection with the given id, or nil.
func (h *harness) conn(id string) *conn {
	s := h.m.reg.shardFor(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

func event(id string) []byte {
	return EncodeEvent(id, "test", json.RawMessage(`{"n":1}`))
}

// wsPair returns both ends of a WebSocket connection served by a throwaway
// server, for tests that call Serve themselves.
func wsPair(t *testing.T) (server, client *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted <- ws
		<-release // keep the handler (and its hijacked conn) alive
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	cli, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = cli.CloseNow() })
	return <-accepted, cli
}

// rawUpgrade upgrades a bare TCP connection to h's server for user and
// handle by hand, for tests that write frames byte by byte; the reader
// holds what follows the 101.
func (h *harness) rawUpgrade(user, handle string) (net.Conn, *bufio.Reader) {
	h.t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	_, _ = conn.Write([]byte("GET /ws?user=" + user + "&handle=" + handle + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		h.t.Fatalf("handshake: %v %v", err, resp)
	}
	return conn, br
}
