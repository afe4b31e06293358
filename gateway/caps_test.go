package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// refusedHandshake dials with token and expects the handshake to be refused
// before the upgrade; it returns the HTTP status and the JSON error code.
func (g *testGateway) refusedHandshake(token string) (int, string) {
	g.t.Helper()
	w, resp, err := dialWS(g.t, g.wsURL(), http.Header{"Authorization": {"Bearer " + token}}, nil)
	if err == nil {
		w.c.CloseNow()
		g.t.Fatal("handshake accepted, want a refusal")
	}
	if resp == nil {
		g.t.Fatalf("handshake failed without an HTTP answer: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		g.t.Fatalf("refusal Content-Type %q, want JSON", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, decodeError(g.t, body)
}

// metricsText returns the /metrics body.
func (g *testGateway) metricsText() string {
	g.t.Helper()
	st, body := doJSON(g.t, g.http.URL, http.MethodGet, "/metrics", nil, "")
	if st != http.StatusOK {
		g.t.Fatalf("/metrics: %d", st)
	}
	return string(body)
}

// Each connection cap refuses the handshake over it before the upgrade, with
// its status, JSON error and metric label, and affects nothing else: other
// sessions, users and the open connections go on.
func TestConnectionCapsRefusedBeforeUpgrade(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		// tokens returns the tokens whose connections reach the cap, the
		// token of one more connection, over it, and the tokens of others
		// the cap must not touch.
		tokens     func(g *testGateway) (fill []string, over string, others []string)
		wantStatus int
		wantCode   string
		label      string
	}{
		{
			name: "per session",
			env:  map[string]string{"WS_MAX_CONNECTIONS_PER_SESSION": "2"},
			tokens: func(g *testGateway) ([]string, string, []string) {
				tok, _ := g.createSession("alice")
				other, _ := g.createSession("alice")
				return []string{tok, tok}, tok, []string{other}
			},
			wantStatus: http.StatusTooManyRequests, wantCode: "too_many_connections", label: "session_cap",
		},
		{
			name: "per user",
			env:  map[string]string{"WS_MAX_CONNECTIONS_PER_USER": "2", "WS_MAX_CONNECTIONS_PER_SESSION": "2"},
			tokens: func(g *testGateway) ([]string, string, []string) {
				t1, _ := g.createSession("alice")
				t2, _ := g.createSession("alice")
				t3, _ := g.createSession("alice")
				bob, _ := g.createSession("bob")
				return []string{t1, t2}, t3, []string{bob}
			},
			wantStatus: http.StatusTooManyRequests, wantCode: "too_many_connections", label: "user_cap",
		},
		{
			name: "per instance",
			env:  map[string]string{"WS_MAX_CONNECTIONS": "2", "WS_MAX_CONNECTIONS_PER_USER": "2", "WS_MAX_CONNECTIONS_PER_SESSION": "2"},
			tokens: func(g *testGateway) ([]string, string, []string) {
				a, _ := g.createSession("alice")
				b, _ := g.createSession("bob")
				c, _ := g.createSession("carol")
				return []string{a, b}, c, nil
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: "at_capacity", label: "instance_cap",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGateway(t, gwOptions{env: tt.env})
			fill, over, others := tt.tokens(g)
			var conns []*wsConn
			for _, tok := range fill {
				w := g.dialToken(tok)
				w.mustNext("welcome")
				conns = append(conns, w)
			}
			status, code := g.refusedHandshake(over)
			if status != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("over the cap: %d %q, want %d %q", status, code, tt.wantStatus, tt.wantCode)
			}
			for _, tok := range others {
				w := g.dialToken(tok)
				w.mustNext("welcome")
				conns = append(conns, w)
			}
			if n := g.srv.conns.Stats().Connections; n != len(conns) {
				t.Fatalf("%d connections registered, want %d", n, len(conns))
			}
			// Everything open still receives.
			if st, out := g.api(http.MethodPost, "/api/v1/publish", map[string]any{"target": map[string]any{"all": true}, "event": "after", "data": map[string]any{}}); st != http.StatusAccepted {
				t.Fatalf("publish: %d %s", st, out)
			}
			for i, w := range conns {
				if f := w.mustNext("event"); f.Event != "after" {
					t.Fatalf("connection %d got %+v", i, f)
				}
			}
			m := g.metricsText()
			if want := fmt.Sprintf(`sessiongate_handshakes_refused_total{reason=%q} 1`, tt.label); !strings.Contains(m, want) {
				t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(m, "sessiongate_handshakes_refused"))
			}
			if !strings.Contains(m, `sessiongate_connection_limit{scope="session"}`) {
				t.Fatalf("/metrics lacks the configured limits:\n%s", grepLines(m, "sessiongate_connection_limit"))
			}
			if want := fmt.Sprint("sessiongate_connects_total ", len(conns), "\n"); !strings.Contains(m, want) {
				t.Fatalf("/metrics lacks %q: the refused handshake was counted as a connect?\n%s", want, grepLines(m, "connects_total"))
			}
		})
	}
}

// Many handshakes racing for a session's last slots: exactly the cap's
// worth get a welcome; every other one is refused, before the upgrade (429)
// or, having passed that check with another racer, at registration (4009),
// and the metrics account for each.
func TestConnectionCapRace(t *testing.T) {
	const tries, limit = 16, 3
	g := startGateway(t, gwOptions{env: map[string]string{"WS_MAX_CONNECTIONS_PER_SESSION": fmt.Sprint(limit)}})
	tok, _ := g.createSession("alice")
	var (
		wg                        sync.WaitGroup
		mu                        sync.Mutex
		welcomed, http429, closed int
	)
	for range tries {
		wg.Go(func() {
			w, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Errorf("handshake failed: %v", err)
					return
				}
				http429++
				return
			}
			f, err := w.next(generous)
			switch {
			case err == nil && f.Type == "welcome":
				welcomed++
			case websocket.CloseStatus(err) == 4009:
				closed++
			default:
				t.Errorf("first frame %+v, error %v", f, err)
			}
		})
	}
	wg.Wait()
	t.Logf("welcomed %d, refused %d before the upgrade, %d at registration", welcomed, http429, closed)
	if welcomed != limit || http429+closed != tries-limit {
		t.Fatalf("welcomed %d, refused %d with 429 and %d with 4009; want %d welcomed", welcomed, http429, closed, limit)
	}
	// A client may see its 4009 before the server has counted it: wait for
	// the counts rather than race them.
	for _, want := range []string{
		fmt.Sprintf(`sessiongate_handshakes_refused_total{reason="session_cap"} %d`, http429),
		fmt.Sprintf(`sessiongate_connection_cap_closes_total{reason="session_cap"} %d`, closed),
	} {
		if strings.HasSuffix(want, " 0") {
			continue // a counter never incremented is not exposed
		}
		var m string
		deadline := time.Now().Add(generous)
		for m = g.metricsText(); !strings.Contains(m, want); m = g.metricsText() {
			if time.Now().After(deadline) {
				t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(m, "session_cap"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A client flooding messages is closed with 4008, counted in the metrics,
// while another connection on the instance keeps receiving. The rate is one
// message per 1000s with a burst of 10: the eleventh message is over it on
// any machine.
func TestInboundFloodClosed4008(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"WS_INBOUND_RATE": "0.001", "WS_INBOUND_BURST": "10"}})
	ftok, _ := g.createSession("mallory")
	otok, _ := g.createSession("olivia")
	flooder := g.dialToken(ftok)
	flooder.mustNext("welcome")
	other := g.dialToken(otok)
	other.mustNext("welcome")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if flooder.c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","data":{"x":1}}`)) != nil {
				return
			}
		}
	}()
	if code := flooder.closeCode(generous); code != 4008 {
		t.Fatalf("flooder close code %d, want 4008", code)
	}
	cancel()

	if st, out := g.api(http.MethodPost, "/api/v1/publish", map[string]any{"target": map[string]any{"user_id": "olivia"}, "event": "still-here", "data": map[string]any{}}); st != http.StatusAccepted {
		t.Fatalf("publish: %d %s", st, out)
	}
	if f := other.mustNext("event"); f.Event != "still-here" {
		t.Fatalf("other connection got %+v", f)
	}
	waitUntil(t, "the 4008 close in the metrics", func() bool {
		m := g.metricsText()
		return strings.Contains(m, "sessiongate_inbound_rate_limited_total 1") &&
			strings.Contains(m, `sessiongate_disconnects_total{code="4008",reason="rate_limited"} 1`)
	})
}

// waitUntil polls cond until it holds or a generous deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
