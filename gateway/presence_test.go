package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

// presenceEnv turns presence events on with a short flush interval.
var presenceEnv = map[string]string{"PRESENCE_EVENTS": "true", "PRESENCE_FLUSH_INTERVAL": "20ms"}

// userPresence reads GET /api/v1/users/{u}/presence from g.
func (g *testGateway) userPresence(u string) userPresenceResponse {
	g.t.Helper()
	st, body := g.api("GET", "/api/v1/users/"+url.PathEscape(u)+"/presence", nil)
	if st != 200 {
		g.t.Fatalf("presence of %s: %d %s", u, st, body)
	}
	var out userPresenceResponse
	if err := json.Unmarshal(body, &out); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// presencePage reads one page of GET /api/v1/presence.
func (g *testGateway) presencePage(limit int, cursor string) presenceListResponse {
	g.t.Helper()
	st, body := g.api("GET", fmt.Sprintf("/api/v1/presence?limit=%d&cursor=%s", limit, url.QueryEscape(cursor)), nil)
	if st != 200 {
		g.t.Fatalf("presence list: %d %s", st, body)
	}
	var out presenceListResponse
	if err := json.Unmarshal(body, &out); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// where renders a presence answer as "inst:conns/sessions ..." for
// comparison.
func where(p userPresenceResponse) string {
	var parts []string
	for _, i := range p.Instances {
		parts = append(parts, fmt.Sprintf("%s:%d/%d", i.ID, i.Connections, i.Sessions))
	}
	return strings.Join(parts, " ")
}

// eventLog collects the system messages of a queue, read by a consumer of
// the application's group.
type eventLog struct {
	mu  sync.Mutex
	got []inbound.Message
}

func collectPresenceEvents(t *testing.T, q inbound.Consumer) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			ms, err := q.Read(ctx, "test", 100, 50*time.Millisecond)
			if err != nil {
				continue
			}
			for _, m := range ms {
				if m.System {
					l.mu.Lock()
					l.got = append(l.got, m)
					l.mu.Unlock()
				}
				_ = q.Ack(ctx, m.ID)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// of returns the events about user as "online(reason)"/"offline(reason)",
// in queue order, checking that their seqs increase.
func (l *eventLog) of(t *testing.T, user string) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	var last int64
	for _, m := range l.got {
		if m.UserID != user {
			continue
		}
		var d presenceEventData
		if err := json.Unmarshal(m.Data, &d); err != nil || d.UserID != user {
			t.Fatalf("event data %s: %v", m.Data, err)
		}
		if d.Seq <= last {
			t.Fatalf("seq %d after %d", d.Seq, last)
		}
		last = d.Seq
		out = append(out, strings.TrimPrefix(m.Event, "presence.")+"("+d.Reason+")")
	}
	return out
}

// Presence across two instances on one real Redis; an instance that stops
// heartbeating without any cleanup (its Redis client is cut, as by a kill)
// is not reported the moment the survivor's view marks it gone, and its
// purge sends offline for the users nobody else holds.
func TestPresenceAcrossInstancesAndKill(t *testing.T) {
	srv := redistest.Start(t)
	var gs []*testGateway
	var clients []*redis.Client
	for _, id := range []string{"inst-a", "inst-b"} {
		env := map[string]string{"GATEWAY_INSTANCE_ID": id}
		for k, v := range presenceEnv {
			env[k] = v
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1})
		t.Cleanup(func() { rdb.Close() })
		clients = append(clients, rdb)
		gs = append(gs, startGateway(t, gwOptions{env: env, rdb: rdb}))
	}
	a, b := gs[0], gs[1]
	waitFor(t, generous, "instances see each other", func() bool {
		return len(a.srv.aliveInstances()) == 2 && len(b.srv.aliveInstances()) == 2
	})
	events := collectPresenceEvents(t, a.parts.Inbound)

	alice, _ := a.createSession("alice")
	bob, _ := a.createSession("bob")
	a.dialToken(alice).mustNext("welcome")
	a.dialToken(alice).mustNext("welcome")
	b.dialToken(alice).mustNext("welcome")
	b.dialToken(bob).mustNext("welcome")

	want := "inst-a:2/1 inst-b:1/1"
	waitFor(t, generous, "alice on both instances", func() bool {
		return where(a.userPresence("alice")) == want && where(b.userPresence("alice")) == want
	})
	if p := a.userPresence("alice"); !p.Online || p.Connections != 3 || p.Sessions != 2 {
		t.Fatalf("alice: %+v", p)
	}
	waitFor(t, generous, "bob on b", func() bool { return where(a.userPresence("bob")) == "inst-b:1/1" })
	if p := a.userPresence("carol"); p.Online || p.Connections != 0 || len(p.Instances) != 0 {
		t.Fatalf("carol: %+v", p)
	}

	// Paging, one user at a time.
	p1 := a.presencePage(1, "")
	if len(p1.Users) != 1 || p1.Users[0].UserID != "alice" || p1.Users[0].Connections != 3 ||
		!slices.Equal(p1.Users[0].Instances, []string{"inst-a", "inst-b"}) || p1.NextCursor == "" {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := a.presencePage(1, p1.NextCursor)
	if len(p2.Users) != 1 || p2.Users[0].UserID != "bob" || !slices.Equal(p2.Users[0].Instances, []string{"inst-b"}) {
		t.Fatalf("page 2: %+v", p2)
	}
	if p2.NextCursor != "" {
		if p3 := a.presencePage(1, p2.NextCursor); len(p3.Users) != 0 || p3.NextCursor != "" {
			t.Fatalf("page 3: %+v", p3)
		}
	}
	waitFor(t, generous, "online events", func() bool {
		return len(events.of(t, "alice")) > 0 && len(events.of(t, "bob")) > 0
	})

	// Kill b: its heartbeats, refreshes and flushes stop, nothing is
	// cleaned up.
	clients[1].Close()
	waitFor(t, generous, "a sees b gone", func() bool { return len(a.srv.aliveInstances()) == 1 })
	// No ghost from this moment on, purged or not.
	if got := where(a.userPresence("alice")); got != "inst-a:2/1" {
		t.Fatalf("alice after b is gone: %q", got)
	}
	if p := a.userPresence("bob"); p.Online {
		t.Fatalf("bob after b is gone: %+v", p)
	}
	if pg := a.presencePage(100, ""); len(pg.Users) != 1 || pg.Users[0].UserID != "alice" || pg.Users[0].Connections != 2 {
		t.Fatalf("list after b is gone: %+v", pg)
	}
	// a purges b: bob goes offline (nobody else holds him), alice not.
	waitFor(t, generous, "bob offline event", func() bool {
		return slices.Equal(events.of(t, "bob"), []string{"online(connect)", "offline(instance gone)"})
	})
	if got := events.of(t, "alice"); !slices.Equal(got, []string{"online(connect)"}) {
		t.Fatalf("alice events: %v", got)
	}
	// b's records are gone from Redis too.
	ctx := context.Background()
	if n := clients[0].Exists(ctx, "sessiongate:presence:{inst-b}:users", "sessiongate:presence:{inst-b}:index").Val(); n != 0 {
		t.Fatalf("b's records left: %d keys", n)
	}
	if m := clients[0].HGetAll(ctx, "sessiongate:presence:user:{bob}").Val(); len(m) != 1 {
		t.Fatalf("bob's record: %v", m)
	}
}

// Embedded mode (memory store): a user's last connection closing takes
// the user offline, and the events come through the in-process queue
// marked as system messages.
func TestPresenceEmbeddedEvents(t *testing.T) {
	g := startGateway(t, gwOptions{env: presenceEnv})
	events := collectPresenceEvents(t, g.parts.Inbound)
	tok, _ := g.createSession("alice")
	c1, c2 := g.dialToken(tok), g.dialToken(tok)
	c1.mustNext("welcome")
	c2.mustNext("welcome")
	waitFor(t, generous, "alice online", func() bool { return where(g.userPresence("alice")) == "test-a:2/1" })
	c1.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, generous, "one connection left", func() bool { return where(g.userPresence("alice")) == "test-a:1/1" })
	c2.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, generous, "alice offline", func() bool { return !g.userPresence("alice").Online })
	waitFor(t, generous, "events", func() bool {
		return slices.Equal(events.of(t, "alice"), []string{"online(connect)", "offline(disconnect)"})
	})
	events.mu.Lock()
	defer events.mu.Unlock()
	for _, m := range events.got {
		if !m.System || m.Handle != "" || m.ConnID != "" || m.Instance != "test-a" {
			t.Fatalf("event not marked as the system's: %+v", m)
		}
	}
}

func TestPresenceAPIInput(t *testing.T) {
	g := startGateway(t, gwOptions{})
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"default limit", "/api/v1/presence", 200},
		{"limit 1", "/api/v1/presence?limit=1", 200},
		{"limit 1000", "/api/v1/presence?limit=1000", 200},
		{"valid cursor", "/api/v1/presence?cursor=" + url.QueryEscape(presenceCursor("alice")), 200},
		{"limit 0", "/api/v1/presence?limit=0", 400},
		{"limit 1001", "/api/v1/presence?limit=1001", 400},
		{"negative limit", "/api/v1/presence?limit=-5", 400},
		{"empty limit", "/api/v1/presence?limit=", 400},
		{"text limit", "/api/v1/presence?limit=ten", 400},
		{"huge limit", "/api/v1/presence?limit=99999999999999999999", 400},
		{"cursor not base64", "/api/v1/presence?cursor=%21%21", 400},
		{"cursor with padding", "/api/v1/presence?cursor=YWxpY2U%3D", 400},
		{"cursor of a bad user id", "/api/v1/presence?cursor=" + presenceCursor(" alice"), 400},
		{"cursor too long", "/api/v1/presence?cursor=" + strings.Repeat("A", 5000), 400},
		{"user ok", "/api/v1/users/alice/presence", 200},
		{"user id with a space first", "/api/v1/users/%20alice/presence", 400},
		{"user id with a control character", "/api/v1/users/a%01b/presence", 400},
		{"user id too long", "/api/v1/users/" + strings.Repeat("a", 300) + "/presence", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := g.api("GET", tc.path, nil)
			if st != tc.status {
				t.Fatalf("%s: %d %s, want %d", tc.path, st, body, tc.status)
			}
			if st == 400 && decodeError(t, body) != codeBadRequest {
				t.Fatalf("error body %s", body)
			}
		})
	}
	if st, _ := doJSON(t, g.http.URL, "GET", "/api/v1/presence", nil, ""); st != 401 {
		t.Fatalf("without API key: %d", st)
	}
	if st, _ := doJSON(t, g.http.URL, "GET", "/api/v1/users/alice/presence", nil, "wrong"); st != 401 {
		t.Fatalf("wrong API key: %d", st)
	}
}

func TestPresenceOff(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"PRESENCE_ENABLED": "false"}})
	tok, _ := g.createSession("alice")
	g.dialToken(tok).mustNext("welcome") // connections work without it
	for _, p := range []string{"/api/v1/presence", "/api/v1/users/alice/presence"} {
		if st, body := g.api("GET", p, nil); st != 404 || decodeError(t, body) != codeNotFound {
			t.Fatalf("%s with presence off: %d %s", p, st, body)
		}
	}
}

// presenceCursor is the cursor that continues after user.
func presenceCursor(user string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(user))
}

func FuzzPresenceQuery(f *testing.F) {
	g := startGateway(f, gwOptions{log: zap.NewNop(), env: map[string]string{"RATE_LIMIT_RPS": "0"}})
	f.Add("10", "")
	f.Add("0", "!!")
	f.Add("1000", presenceCursor("alice"))
	f.Add("", "YQ")
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		q := url.Values{"limit": {limit}, "cursor": {cursor}}
		st, body := doJSON(t, g.http.URL, "GET", "/api/v1/presence?"+q.Encode(), nil, testAPIKey)
		switch st {
		case 200:
			var out presenceListResponse
			if err := json.Unmarshal(body, &out); err != nil || out.Users == nil {
				t.Fatalf("200 with body %s", body)
			}
		case 400:
			if decodeError(t, body) != codeBadRequest {
				t.Fatalf("400 with body %s", body)
			}
		default:
			t.Fatalf("limit %q cursor %q: %d %s", limit, cursor, st, body)
		}
	})
}
