package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/inbound/echo"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/internal/wiring"
)

// answer is an ack or error frame.
type answer struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	MsgID   string `json:"msg_id"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Event   string `json:"event"`
	Data    json.RawMessage
}

// send writes a client message and returns the next frame that is not a
// ping.
func (w *wsConn) send(t *testing.T, frame string) answer {
	t.Helper()
	if err := w.c.Write(t.Context(), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("write %s: %v", frame, err)
	}
	return w.nextAnswer(t)
}

func (w *wsConn) nextAnswer(t *testing.T) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), generous)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var a answer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if a.Type != "ping" {
			return a
		}
	}
}

// runEcho runs the example worker on g's queue until the test ends.
func runEcho(t *testing.T, g *testGateway, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := inbound.Worker{
		Consumer: g.parts.Inbound,
		Name:     name,
		Default:  echo.Handler(inbound.RedisReplier{History: g.parts.History, Channel: wiring.EventChannel(g.cfg)}, name),
		Block:    100 * time.Millisecond,
	}
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}

// inboundScenario: a client message is acked once queued, a worker gets
// it with its sender, and its reply reaches the sender's connection (on
// another instance when a and b differ).
func inboundScenario(t *testing.T, a, b *testGateway) {
	tok, _ := a.createSession("alice")
	c := b.dialToken(tok)
	c.mustNext("welcome")
	ack := c.send(t, `{"type":"message","id":"c-1","event":"echo","data":{"text":"hi"}}`)
	if ack.Type != "ack" || ack.ID != "c-1" || ack.MsgID == "" {
		t.Fatalf("answer %+v, want an ack of c-1 with a msg_id", ack)
	}
	runEcho(t, a, "echo-test")
	f := c.mustNext("event")
	var r echo.Reply
	if err := json.Unmarshal(f.Data, &r); err != nil {
		t.Fatal(err)
	}
	if f.Event != echo.ReplyEvent || r.MsgID != ack.MsgID || r.ClientID != "c-1" || r.Event != "echo" ||
		fmt.Sprint(r.Data) != "map[text:hi]" || r.Deliveries != 1 || f.Offset == 0 {
		t.Fatalf("reply %+v (%s)", f, f.Data)
	}
}

func TestInboundEmbedded(t *testing.T) {
	g := startGateway(t, gwOptions{})
	inboundScenario(t, g, g)
}

func TestInboundTwoInstancesOnRedis(t *testing.T) {
	gs := startInstances(t, redistest.Start(t), 2, nil)
	inboundScenario(t, gs[0], gs[1])
}

// Every refusal is an error frame naming the message, the message is not
// queued, and the connection (and everyone else's) stays open.
func TestInboundRefusals(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"INBOUND_MAX_BYTES": "64", "INBOUND_MAX_LEN": "2", "INBOUND_PARTITIONS": "1"}})
	tok, _ := g.createSession("mallory")
	otok, _ := g.createSession("olivia")
	c := g.dialToken(tok)
	c.mustNext("welcome")
	o := g.dialToken(otok)
	o.mustNext("welcome")
	tests := []struct{ frame, code string }{
		{`{"type":"message","id":"big","data":"` + strings.Repeat("x", 64) + `"}`, "too_large"},
		{`{"type":"message","id":"ctl","event":"a\u0007b","data":{}}`, "invalid"},
		{`{"type":"message","id":"long","event":"` + strings.Repeat("e", 129) + `","data":{}}`, "invalid"},
	}
	for _, tt := range tests {
		if a := c.send(t, tt.frame); a.Type != "error" || a.Code != tt.code || a.Message == "" {
			t.Fatalf("%.40s: answer %+v, want error %s", tt.frame, a, tt.code)
		}
	}
	// The partition holds 2: the third is refused, nothing is trimmed.
	for i := range 2 {
		if a := c.send(t, fmt.Sprintf(`{"type":"message","id":"q%d","data":{}}`, i)); a.Type != "ack" {
			t.Fatalf("q%d: %+v", i, a)
		}
	}
	if a := o.send(t, `{"type":"message","id":"full","data":{}}`); a.Type != "error" || a.Code != "queue_full" {
		t.Fatalf("third message: %+v, want queue_full", a)
	}
	st, err := g.parts.Inbound.Stats(t.Context())
	if err != nil || st.Length != 2 {
		t.Fatalf("queue stats %+v, %v; want the 2 acked messages, none of the refused", st, err)
	}
	for _, want := range []string{`result="too_large"} 1`, `result="invalid"} 2`, `result="queue_full"} 1`, `result="queued"} 2`} {
		if m := g.metricsText(); !strings.Contains(m, "sessiongate_inbound_messages_total{"+want) {
			t.Fatalf("/metrics lacks inbound_messages_total{%s:\n%s", want, grepLines(m, "inbound"))
		}
	}
	// A malformed frame closes only its sender, with 4503.
	if err := c.c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"message","id":"bad id","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	if code := c.closeCode(generous); code != 4503 {
		t.Fatalf("malformed id: close %d, want 4503", code)
	}
	if a := o.send(t, `{"type":"message","id":"after","data":{}}`); a.Type != "error" || a.Code != "queue_full" {
		t.Fatalf("the other client after the close: %+v", a)
	}
}

// Redis down: a message is refused with unavailable, never acked, and the
// connection stays open; once Redis is back, messages are acked again.
func TestInboundRedisDown(t *testing.T) {
	// Redis keeps its data across the outage: a restart that lost the
	// session would (rightly) close the connection with 4504 session_lost.
	srv := redistest.Start(t, persistent...)
	g := startInstances(t, srv, 1, map[string]string{"WS_PING_INTERVAL": "1h"})[0]
	tok, _ := g.createSession("alice")
	c := g.dialToken(tok)
	c.mustNext("welcome")
	srv.Stop()
	if a := c.send(t, `{"type":"message","id":"down","data":{}}`); a.Type != "error" || a.Code != "unavailable" {
		t.Fatalf("with Redis down: %+v, want error unavailable", a)
	}
	srv.Restart(persistent...)
	waitFor(t, generous, "acked again once Redis is back", func() bool {
		return c.send(t, `{"type":"message","id":"up","data":{}}`).Type == "ack"
	})
}

// The operators' API: stats, dead letters with their error, re-drive;
// and the queue's gauges on /metrics.
func TestInboundAdminAPI(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"INBOUND_MAX_DELIVERIES": "1"}})
	tok, _ := g.createSession("alice")
	c := g.dialToken(tok)
	c.mustNext("welcome")
	for i := range 2 {
		if a := c.send(t, fmt.Sprintf(`{"type":"message","id":"m%d","event":"boom","data":{}}`, i)); a.Type != "ack" {
			t.Fatalf("m%d: %+v", i, a)
		}
	}
	var st inbound.Stats
	getJSON(t, g, "/api/v1/inbound", &st)
	if st.Length != 2 || st.Dead != 0 || len(st.Partitions) != 16 {
		t.Fatalf("stats %+v", st)
	}
	if m := g.metricsText(); !strings.Contains(m, "sessiongate_inbound_queue_length 2") || !strings.Contains(m, "sessiongate_inbound_redeliveries_total 0") {
		t.Fatalf("/metrics lacks the queue's figures:\n%s", grepLines(m, "inbound"))
	}
	// A worker whose handler fails permanently dead-letters both.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- inbound.Worker{Consumer: g.parts.Inbound, Name: "failing", Block: 100 * time.Millisecond,
			Default: func(context.Context, *inbound.Message) error {
				return inbound.Permanent(fmt.Errorf("no handler for boom"))
			},
		}.Run(ctx)
	}()
	waitFor(t, generous, "both messages dead-lettered", func() bool {
		getJSON(t, g, "/api/v1/inbound", &st)
		return st.Dead == 2 && st.Length == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var dl struct {
		DeadLetters []inbound.DeadLetter `json:"dead_letters"`
	}
	getJSON(t, g, "/api/v1/inbound/dead-letters?limit=1", &dl)
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].Message.ClientID != "m0" || dl.DeadLetters[0].Message.UserID != "alice" ||
		!strings.Contains(dl.DeadLetters[0].Error, "no handler for boom") {
		t.Fatalf("first dead letter page %+v", dl)
	}
	getJSON(t, g, "/api/v1/inbound/dead-letters?after="+dl.DeadLetters[0].ID, &dl)
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].Message.ClientID != "m1" {
		t.Fatalf("second dead letter page %+v", dl)
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?after=not-an-id"} {
		if st, body := g.api(http.MethodGet, "/api/v1/inbound/dead-letters"+bad, nil); st != http.StatusBadRequest || decodeError(t, body) != codeBadRequest {
			t.Fatalf("%s: %d %s", bad, st, body)
		}
	}
	if st, body := g.api(http.MethodPost, "/api/v1/inbound/dead-letters/redrive", map[string]any{"ids": []string{"nope"}}); st != http.StatusBadRequest {
		t.Fatalf("redrive of a bad id: %d %s", st, body)
	}
	// Re-drive one, then the rest.
	st1, body := g.api(http.MethodPost, "/api/v1/inbound/dead-letters/redrive", map[string]any{"ids": []string{dl.DeadLetters[0].ID}})
	if st1 != http.StatusOK || !strings.Contains(string(body), `"redriven":1`) {
		t.Fatalf("redrive one: %d %s", st1, body)
	}
	st1, body = g.api(http.MethodPost, "/api/v1/inbound/dead-letters/redrive", nil)
	if st1 != http.StatusOK || !strings.Contains(string(body), `"redriven":1`) {
		t.Fatalf("redrive the rest: %d %s", st1, body)
	}
	getJSON(t, g, "/api/v1/inbound", &st)
	if st.Length != 2 || st.Dead != 0 {
		t.Fatalf("after the re-drive: %+v", st)
	}
	if st, body := doJSON(t, g.http.URL, http.MethodGet, "/api/v1/inbound", nil, ""); st != http.StatusUnauthorized {
		t.Fatalf("without an API key: %d %s", st, body)
	}
}

func getJSON(t *testing.T, g *testGateway, path string, out any) {
	t.Helper()
	st, body := g.api(http.MethodGet, path, nil)
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, st, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
