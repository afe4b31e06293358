package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// welcomeFrame is a welcome with the resume fields.
type welcomeFrame struct {
	frame
	Recovered *bool    `json:"recovered"`
	Lost      []string `json:"lost"`
}

// dialResume connects with token and the resume query q, and reads the
// welcome.
func (g *testGateway) dialResume(token, q string) (*wsConn, welcomeFrame) {
	g.t.Helper()
	w, resp, err := dialWS(g.t, g.wsURL()+"?"+q, http.Header{"Authorization": {"Bearer " + token}}, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		g.t.Fatalf("dial with %s: %v (status %d)", q, err, status)
	}
	return w, w.welcome()
}

// welcome reads the first frame as a welcome with its resume fields.
func (w *wsConn) welcome() welcomeFrame {
	w.t.Helper()
	_, b, err := w.c.Read(w.t.Context())
	if err != nil {
		w.t.Fatalf("reading the welcome: %v", err)
	}
	var wf welcomeFrame
	if err := json.Unmarshal(b, &wf); err != nil || wf.Type != "welcome" {
		w.t.Fatalf("first frame %s (%v), want a welcome", b, err)
	}
	return wf
}

func resumeQuery(stream, epoch string, offset uint64) string {
	return "resume_" + stream + "=" + url.QueryEscape(epoch+":"+strconv.FormatUint(offset, 10))
}

// resumeScenario: a client that was away gets, after a welcome saying
// recovered, exactly what it missed in each stream (its own session's
// events, not the user's other sessions'), oldest first, then live events.
func resumeScenario(t *testing.T, a, b *testGateway) {
	tok, mine := a.createSession("alice")
	_, otherHandle := a.createSession("alice")
	c := b.dialToken(tok)
	w := c.mustNext("welcome")
	all := w.Positions["all"]
	for i := range 3 {
		a.publishTo(map[string]any{"user_id": "alice"}, "before", map[string]int{"n": i})
	}
	var last frame
	for range 3 {
		last = c.mustNext("event")
	}
	_ = c.c.CloseNow()

	// Away: four events to the user, one to another session of the user,
	// one to this session, one broadcast.
	var want []string
	for i := range 4 {
		want = append(want, a.publishTo(map[string]any{"user_id": "alice"}, "away", map[string]int{"n": i}).ID)
	}
	a.publishTo(map[string]any{"handle": otherHandle}, "other-session", nil)
	want = append(want, a.publishTo(map[string]any{"handle": mine}, "mine", nil).ID)
	want = append(want, a.publishTo(map[string]any{"all": true}, "broadcast", nil).ID)

	c2, w2 := b.dialResume(tok, resumeQuery("user", last.Epoch, last.Offset)+"&"+resumeQuery("all", all.Epoch, all.Offset))
	if w2.Recovered == nil || !*w2.Recovered || len(w2.Lost) != 0 {
		t.Fatalf("welcome recovered=%v lost=%v, want recovered", w2.Recovered, w2.Lost)
	}
	if p := w2.Positions["user"]; p.Epoch != last.Epoch || p.Offset != last.Offset+6 {
		t.Fatalf("welcome user position %+v, want the stream's current one (%s, %d)", p, last.Epoch, last.Offset+6)
	}
	live := a.publishTo(map[string]any{"user_id": "alice"}, "live", nil)
	want = append(want, live.ID)
	var got []string
	var offsets []uint64
	for range want {
		f := c2.mustNext("event")
		got = append(got, f.ID)
		if f.Stream == "user" {
			offsets = append(offsets, f.Offset)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the welcome: %v\nwant %v (the missed events in order, then live)", got, want)
	}
	if !slices.IsSorted(offsets) || offsets[0] != last.Offset+1 {
		t.Fatalf("user stream offsets %v, want increasing from %d", offsets, last.Offset+1)
	}
}

func TestResumeEmbedded(t *testing.T) {
	g := startGateway(t, gwOptions{env: scenarioEnv})
	resumeScenario(t, g, g)
}

func TestResumeTwoInstancesOnRedis(t *testing.T) {
	gs := startInstances(t, redistest.Start(t), 2, scenarioEnv)
	resumeScenario(t, gs[0], gs[1])
}

// noGapScenario: while events are published as fast as the gateways take
// them, a client keeps dropping its connection and resuming from the last
// event it delivered. Deduplicating by offset as client-js does, it
// delivers every event exactly once, in order: the switch from replay to
// live neither skips nor reorders one.
func noGapScenario(t *testing.T, pub, sub *testGateway, n int) {
	tok, _ := pub.createSession("carol")
	c := sub.dialToken(tok)
	w := c.mustNext("welcome")
	epoch, last := w.Positions["user"].Epoch, w.Positions["user"].Offset

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			pub.publishTo(map[string]any{"user_id": "carol"}, "seq", map[string]int{"n": i})
		}
	}()
	t.Cleanup(wg.Wait)
	delivered, wireDups, reconnects := 0, 0, 0
	for delivered < n {
		// A few events on this connection, then drop it.
		for range 1 + reconnects%7 {
			f, err := c.next(generous)
			if err != nil {
				t.Fatalf("after %d events: %v", delivered, err)
			}
			if f.Type != "event" {
				t.Fatalf("frame %+v", f)
			}
			if f.Epoch != epoch {
				t.Fatalf("epoch changed from %s to %s mid-test", epoch, f.Epoch)
			}
			switch {
			case f.Offset <= last:
				wireDups++
				continue
			case f.Offset != last+1:
				t.Fatalf("gap: offset %d after %d (%d reconnects)", f.Offset, last, reconnects)
			}
			var data struct{ N int }
			_ = json.Unmarshal(f.Data, &data)
			if data.N != delivered {
				t.Fatalf("event %d carries %d", delivered, data.N)
			}
			last++
			delivered++
			if delivered == n {
				break
			}
		}
		if delivered == n {
			break
		}
		_ = c.c.CloseNow()
		reconnects++
		var wf welcomeFrame
		c, wf = sub.dialResume(tok, resumeQuery("user", epoch, last))
		if wf.Recovered == nil || !*wf.Recovered {
			t.Fatalf("reconnect %d from offset %d: recovered=%v lost=%v", reconnects, last, wf.Recovered, wf.Lost)
		}
	}
	t.Logf("%d events, %d reconnects, %d duplicates on the wire (dropped)", n, reconnects, wireDups)
}

func TestResumeNoGapEmbedded(t *testing.T) {
	g := startGateway(t, gwOptions{env: scenarioEnv})
	noGapScenario(t, g, g, 300)
}

func TestResumeNoGapTwoInstancesOnRedis(t *testing.T) {
	gs := startInstances(t, redistest.Start(t), 2, scenarioEnv)
	noGapScenario(t, gs[0], gs[1], 300)
}

// A position the history cannot continue from gets recovered:false, the
// stream in lost, the stream's current position, and no replay: the next
// frame is the next live event. Never another user's events.
func TestResumeUnrecoverable(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"HISTORY_SIZE": "5", "RESUME_MAX_EVENTS": "3", "WS_PING_INTERVAL": "1h"}})
	tok, _ := g.createSession("alice")
	c := g.dialToken(tok)
	epoch := c.mustNext("welcome").Positions["user"].Epoch
	_ = c.c.CloseNow()
	bob := g.publishTo(map[string]any{"user_id": "bob"}, "bobs", map[string]string{"secret": "x"})
	for i := range 8 {
		g.publishTo(map[string]any{"user_id": "alice"}, "e", map[string]int{"n": i})
	}
	tests := []struct {
		name, query, reason string
	}{
		{"trimmed", resumeQuery("user", epoch, 1), "lost"},
		{"too far behind", resumeQuery("user", epoch, 4), "too_far_behind"},
		{"future offset", resumeQuery("user", epoch, 9), "lost"},
		{"forged epoch", resumeQuery("user", "00112233445566ff", 7), "lost"},
		{"another user's position", resumeQuery("user", bob.Epoch, 0), "lost"},
		{"another user's position as the broadcast", resumeQuery("all", bob.Epoch, 0), "lost"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := strings.TrimPrefix(strings.SplitN(tt.query, "=", 2)[0], "resume_")
			before := metricValue(t, g, "sessiongate_resumes_total", `result="`+tt.reason+`",stream="`+stream+`"`)
			c, w := g.dialResume(tok, tt.query)
			if w.Recovered == nil || *w.Recovered || !slices.Equal(w.Lost, []string{stream}) {
				t.Fatalf("welcome recovered=%v lost=%v, want false [%s]", w.Recovered, w.Lost, stream)
			}
			if p := w.Positions["user"]; p.Epoch != epoch || p.Offset != 8 {
				t.Fatalf("welcome user position %+v, want (%s, 8)", p, epoch)
			}
			live := g.publishTo(map[string]any{"all": true}, "live", map[string]int{"n": i})
			if f := c.mustNext("event"); f.ID != live.ID {
				t.Fatalf("first frame after the welcome %+v, want the live event %s (no replay)", f, live.ID)
			}
			if after := metricValue(t, g, "sessiongate_resumes_total", `result="`+tt.reason+`",stream="`+stream+`"`); after != before+1 {
				t.Fatalf("resumes{%s,%s} went %v -> %v", stream, tt.reason, before, after)
			}
			_ = c.c.CloseNow()
		})
	}
	// Resuming at the stream's current position is recovered, with nothing
	// to replay.
	c, w := g.dialResume(tok, resumeQuery("user", epoch, 8))
	if w.Recovered == nil || !*w.Recovered {
		t.Fatalf("resume at the current position: recovered=%v lost=%v", w.Recovered, w.Lost)
	}
	live := g.publishTo(map[string]any{"user_id": "alice"}, "live", nil)
	if f := c.mustNext("event"); f.ID != live.ID || f.Offset != 9 {
		t.Fatalf("first frame %+v, want the live event at offset 9", f)
	}
}

// A malformed resume parameter is refused before the upgrade with a JSON
// 400: replaying from a guessed position could skip events.
func TestResumeMalformed(t *testing.T) {
	g := startGateway(t, gwOptions{})
	tok, _ := g.createSession("alice")
	for _, q := range []string{
		"resume_user=", "resume_user=abc", "resume_user=:1", "resume_user=ab:", "resume_user=XY:1",
		"resume_user=ab:01", "resume_user=ab:-1", "resume_user=ab:1:2", "resume_user=ab:%201",
		"resume_user=" + strings.Repeat("a", 65) + ":1", "resume_all=ab:18446744073709551616",
		"resume_user=ab:1&resume_user=ab:2", "resume_all=ab%00:1", "resume_user=AB:1",
	} {
		_, resp, err := dialWS(t, g.wsURL()+"?"+q, http.Header{"Authorization": {"Bearer " + tok}}, nil)
		if err == nil {
			t.Fatalf("%s: upgraded", q)
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %v, want HTTP 400", q, err)
		}
	}
	// The refusal is JSON with the documented code.
	req, _ := http.NewRequest(http.MethodGet, g.http.URL+"/ws?resume_user=zz:1", nil)
	req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Authorization": {"Bearer " + tok}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 400 || e.Error.Code != codeBadRequest ||
		!strings.HasPrefix(e.Error.Message, "resume: ") {
		t.Fatalf("HTTP %d %+v (%v)", resp.StatusCode, e, err)
	}
	// The gateway still serves the same client.
	c := g.dialToken(tok)
	c.mustNext("welcome")
}

// With history off a resuming client is told every stream it asked for
// is lost: nothing can be replayed.
func TestResumeHistoryOff(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"HISTORY_SIZE": "0"}})
	tok, _ := g.createSession("alice")
	_, w := g.dialResume(tok, resumeQuery("user", "ab", 3)+"&"+resumeQuery("all", "cd", 0))
	if w.Recovered == nil || *w.Recovered || !slices.Equal(w.Lost, []string{"user", "all"}) || len(w.Positions) != 0 {
		t.Fatalf("welcome %+v recovered=%v lost=%v", w.frame, w.Recovered, w.Lost)
	}
	// Without resume parameters: no resume fields at all.
	c := g.dialToken(tok)
	if w := c.welcome(); w.Recovered != nil || w.Lost != nil {
		t.Fatalf("welcome without resume has recovered=%v lost=%v", w.Recovered, w.Lost)
	}
}

func FuzzParseResume(f *testing.F) {
	for _, s := range []string{"resume_user=ab:1", "resume_all=00112233445566ff:0&resume_user=ff:18446744073709551615",
		"resume_user=ab:01", "resume_user=%00", "resume_all=" + strings.Repeat("f", 64) + ":1", "resume_user=a:1&resume_user=a:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		from, err := parseResume(q)
		if err != nil {
			if he, ok := err.(*httpError); !ok || he.status != http.StatusBadRequest {
				t.Fatalf("%q: error %v, want a 400", raw, err)
			}
			return
		}
		for stream, pos := range from {
			// What was accepted prints back to the value it came from.
			if got := q.Get("resume_" + stream); got != fmt.Sprintf("%s:%d", pos.Epoch, pos.Offset) {
				t.Fatalf("%q: parsed %s as %+v", raw, got, pos)
			}
		}
	})
}

// metricValue is the value of the sample of name whose labels are exactly
// labels (as /metrics prints them, sorted), 0 when absent.
func metricValue(t *testing.T, g *testGateway, name, labels string) float64 {
	t.Helper()
	prefix := name + "{" + labels + "} "
	for _, l := range strings.Split(g.metricsText(), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return 0
}
