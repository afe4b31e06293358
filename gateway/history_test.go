package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

type publishResult struct {
	ID             string `json:"id"`
	DeliveredLocal int    `json:"delivered_local"`
	Stream         string `json:"stream"`
	Epoch          string `json:"epoch"`
	Offset         uint64 `json:"offset"`
}

func (g *testGateway) publishTo(target map[string]any, event string, data any) publishResult {
	g.t.Helper()
	st, body := g.api(http.MethodPost, "/api/v1/publish", map[string]any{"target": target, "event": event, "data": data})
	if st != http.StatusAccepted {
		g.t.Errorf("publish: %d %s", st, body)
		return publishResult{}
	}
	var r publishResult
	if err := json.Unmarshal(body, &r); err != nil {
		g.t.Errorf("publish response %s: %v", body, err)
	}
	return r
}

type historyResult struct {
	UserID string `json:"user_id"`
	Stream string `json:"stream"`
	Epoch  string `json:"epoch"`
	Events []struct {
		ID     string          `json:"id"`
		Event  string          `json:"event"`
		Data   json.RawMessage `json:"data"`
		Offset uint64          `json:"offset"`
	} `json:"events"`
	Recovered bool `json:"recovered"`
	Current   struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	} `json:"current"`
}

func (g *testGateway) history(path string) historyResult {
	g.t.Helper()
	st, body := g.api(http.MethodGet, path, nil)
	if st != http.StatusOK {
		g.t.Fatalf("GET %s: %d %s", path, st, body)
	}
	var r historyResult
	if err := json.Unmarshal(body, &r); err != nil {
		g.t.Fatal(err)
	}
	return r
}

// offsetScenario is the offsets contract, run over two instances on one
// Redis and over one embedded gateway (a and b the same instance):
// publishes through either get consecutive offsets in one stream per user,
// every connection sees them strictly increasing with no gap, the publish
// response and the history API agree with the frames.
func offsetScenario(t *testing.T, a, b *testGateway) {
	tok, handle := a.createSession("alice")
	onB := b.dialToken(tok)
	w := onB.mustNext("welcome")
	user, all := w.Positions["user"], w.Positions["all"]
	if user.Epoch == "" || user.Offset != 0 || all.Epoch == "" || len(user.Epoch) != 16 {
		t.Fatalf("welcome positions %+v", w.Positions)
	}

	// A publish through A reaches B with the offset A's response gave.
	r := a.publishTo(map[string]any{"user_id": "alice"}, "first", map[string]int{"n": 0})
	if r.Stream != "user" || r.Epoch != user.Epoch || r.Offset != 1 {
		t.Fatalf("publish response %+v, want user stream offset 1 of epoch %s", r, user.Epoch)
	}
	f := onB.mustNext("event")
	if f.ID != r.ID || f.Stream != "user" || f.Epoch != r.Epoch || f.Offset != r.Offset {
		t.Fatalf("frame %+v, publish response %+v", f, r)
	}

	// 200 concurrent publishes, half through each instance, to a user with
	// a connection on each.
	onA := a.dialToken(tok)
	if w := onA.mustNext("welcome"); w.Positions["user"].Offset != 1 {
		t.Fatalf("second welcome positions %+v", w.Positions)
	}
	wantLocal := 1
	if a == b {
		wantLocal = 2
	}
	const n = 200
	results := make([]publishResult, n)
	var wg sync.WaitGroup
	for i := range n {
		g := a
		if i%2 == 1 {
			g = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g.publishTo(map[string]any{"user_id": "alice"}, "tick", map[string]int{"n": i + 1})
		}()
	}
	seen := map[uint64]string{}
	for ci, conn := range []*wsConn{onA, onB} {
		var got []uint64
		for range n {
			f, err := conn.next(generous)
			if err != nil || f.Type != "event" {
				t.Fatalf("connection %d: after offsets %v: %+v, %v", ci, got, f, err)
			}
			got = append(got, f.Offset)
			seen[f.Offset] = f.ID
		}
		for i, off := range got {
			if off != uint64(i+2) {
				t.Fatalf("connection %d got offsets %v: they must increase by one from 2", ci, got)
			}
		}
	}
	wg.Wait()
	for _, r := range results {
		if seen[r.Offset] != r.ID || r.Stream != "user" {
			t.Fatalf("publish %+v: its offset carried event %q", r, seen[r.Offset])
		}
		if r.DeliveredLocal != wantLocal {
			t.Fatalf("publish %+v: delivered_local %d, want %d", r, r.DeliveredLocal, wantLocal)
		}
	}

	// The history API returns them, in order, from either instance: the
	// latest 100 (HISTORY_SIZE) are kept.
	h := b.history("/api/v1/users/alice/history?epoch=" + user.Epoch + "&since=101&limit=1000")
	if !h.Recovered || h.UserID != "alice" || h.Stream != "user" || h.Epoch != user.Epoch || len(h.Events) != 100 ||
		h.Current.Offset != 1+n || h.Current.Epoch != user.Epoch {
		t.Fatalf("history: recovered %v, %d events, current %+v", h.Recovered, len(h.Events), h.Current)
	}
	for i, e := range h.Events {
		if e.Offset != uint64(i+102) || e.ID != seen[e.Offset] || e.Event != "tick" {
			t.Fatalf("history event %d: %+v", i, e)
		}
	}
	// Without a position: the latest events, at most limit.
	if h := a.history("/api/v1/users/alice/history?limit=3"); !h.Recovered || len(h.Events) != 3 || h.Events[2].Offset != 1+n {
		t.Fatalf("latest 3: %+v", h)
	}

	// A session target goes into its user's stream.
	r = a.publishTo(map[string]any{"handle": handle}, "to-session", nil)
	if r.Stream != "user" || r.Offset != 2+n {
		t.Fatalf("session publish %+v, want offset %d of the user's stream", r, 2+n)
	}
	for _, c := range []*wsConn{onA, onB} { // both are the session's
		if f := c.mustNext("event"); f.Offset != r.Offset || f.Event != "to-session" {
			t.Fatalf("frame %+v after a session publish %+v", f, r)
		}
	}
	unknown := fmt.Sprintf("%064x", 1)
	st, body := a.api(http.MethodPost, "/api/v1/publish", map[string]any{"target": map[string]any{"handle": unknown}, "event": "x"})
	if st != http.StatusNotFound || decodeError(t, body) != codeNotFound {
		t.Fatalf("publish to an unknown handle: %d %s", st, body)
	}

	// The broadcast stream is another stream, with offsets of its own.
	r = b.publishTo(map[string]any{"all": true}, "news", nil)
	if r.Stream != "all" || r.Epoch != all.Epoch || r.Offset != 1 {
		t.Fatalf("broadcast publish %+v, want offset 1 of epoch %s", r, all.Epoch)
	}
	if f := onA.mustNext("event"); f.Stream != "all" || f.Offset != 1 {
		t.Fatalf("broadcast frame %+v", f)
	}
}

// scenarioEnv lets a connection's queue hold every event of the scenario
// while the test reads the other connection, and keeps the pub/sub
// liveness check (three missed heartbeats) from cutting the subscription
// while 200 publishes load a busy machine: that is a gap, which resume
// (not this test) is about.
var scenarioEnv = map[string]string{"WS_SEND_QUEUE": "1024", "WS_PING_INTERVAL": "1h", "PUBSUB_HEARTBEAT_INTERVAL": "5s"}

func TestOffsetsTwoInstancesOnRedis(t *testing.T) {
	gs := startInstances(t, redistest.Start(t), 2, scenarioEnv)
	offsetScenario(t, gs[0], gs[1])
}

func TestOffsetsEmbedded(t *testing.T) {
	g := startGateway(t, gwOptions{env: scenarioEnv})
	offsetScenario(t, g, g)
}

// With history off, publishing works as before: no positions anywhere.
func TestHistoryOff(t *testing.T) {
	for _, mode := range []string{"embedded", "redis"} {
		t.Run(mode, func(t *testing.T) {
			env := map[string]string{"HISTORY_SIZE": "0"}
			var a, b *testGateway
			if mode == "redis" {
				gs := startInstances(t, redistest.Start(t), 2, env)
				a, b = gs[0], gs[1]
			} else {
				a = startGateway(t, gwOptions{env: env})
				b = a
			}
			tok, _ := a.createSession("bob")
			onA, onB := a.dialToken(tok), b.dialToken(tok)
			for _, c := range []*wsConn{onA, onB} {
				if w := c.mustNext("welcome"); w.Positions != nil {
					t.Fatalf("welcome with history off has positions %+v", w.Positions)
				}
			}
			r := a.publishTo(map[string]any{"user_id": "bob"}, "plain", map[string]int{"n": 1})
			if r.Offset != 0 || r.Epoch != "" || r.Stream != "" || r.DeliveredLocal != 1+boolInt(a == b) {
				t.Fatalf("publish response %+v", r)
			}
			for _, c := range []*wsConn{onA, onB} {
				if f := c.mustNext("event"); f.ID != r.ID || f.Offset != 0 || f.Stream != "" || f.Epoch != "" {
					t.Fatalf("frame %+v", f)
				}
			}
			if h := a.history("/api/v1/users/bob/history"); h.Recovered || len(h.Events) != 0 || h.Epoch != "" {
				t.Fatalf("history with history off: %+v", h)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestHistoryAPIInput(t *testing.T) {
	g := startGateway(t, gwOptions{})
	tests := []struct {
		name, query string
	}{
		{"limit zero", "limit=0"},
		{"limit not a number", "limit=ten"},
		{"limit too large", "limit=1001"},
		{"epoch without since", "epoch=00112233445566ff"},
		{"since without epoch", "since=3"},
		{"epoch not hex", "epoch=XYZ&since=1"},
		{"epoch too long", "epoch=" + fmt.Sprintf("%065d", 0) + "&since=1"},
		{"negative since", "epoch=00112233445566ff&since=-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := g.api(http.MethodGet, "/api/v1/users/alice/history?"+tt.query, nil)
			if st != http.StatusBadRequest || decodeError(t, body) != codeBadRequest {
				t.Fatalf("%s: %d %s", tt.query, st, body)
			}
		})
	}
	if st, body := doJSON(t, g.http.URL, http.MethodGet, "/api/v1/users/alice/history", nil, ""); st != http.StatusUnauthorized {
		t.Fatalf("without an API key: %d %s", st, body)
	}

	// A user id is percent-decoded like on the other user endpoints, and a
	// forged position is unrecoverable, not an error.
	const user = "a@b/c"
	r := g.publishTo(map[string]any{"user_id": user}, "e", nil)
	h := g.history("/api/v1/users/" + url.PathEscape(user) + "/history?epoch=" + r.Epoch + "&since=0")
	if h.UserID != user || !h.Recovered || len(h.Events) != 1 || h.Events[0].ID != r.ID || string(h.Events[0].Data) != "null" {
		t.Fatalf("history of %q: %+v", user, h)
	}
	for _, q := range []string{"epoch=" + r.Epoch + "&since=99", "epoch=00112233445566ff&since=0"} {
		if h := g.history("/api/v1/users/" + url.PathEscape(user) + "/history?" + q); h.Recovered || len(h.Events) != 0 || h.Current.Offset != 1 {
			t.Fatalf("forged position %s: %+v", q, h)
		}
	}
}
