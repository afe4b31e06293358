//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// Positions a client sends are untrusted input. A malformed resume_user or
// resume_all is refused before the upgrade with a 400 JSON error; a
// well-formed position the server cannot honour (another epoch, ahead of the
// stream, another user's or the broadcast stream's epoch) is "not
// recovered" with nothing replayed, and no event of another user is ever
// sent. A connection open meanwhile is not affected. Plain Go WebSocket
// clients with session tokens, straight to one instance.
func TestResumeBadPositions(t *testing.T) {
	tc := startCluster(t, cluster.Options{Instances: 1})
	g := tc.Gateways[0]
	mallory := tc.createSession("mallory")

	// The victim's stream has events that must never reach mallory.
	var victimEpoch string
	for i := range 5 {
		victimEpoch = tc.publishPos(g, "victim", "secret", map[string]any{"owner": "victim", "i": i}).Epoch
	}
	var mine seqPosition
	for i := range 3 {
		mine = tc.publishPos(g, "mallory", "mine", map[string]any{"owner": "mallory", "i": i})
	}
	if victimEpoch == mine.Epoch {
		t.Fatalf("two users' streams share epoch %s", mine.Epoch)
	}

	bystander := dialWS(t, g, mallory, "")
	bw := bystander.welcome(t)
	allEpoch := bw.Positions["all"].Epoch
	markers := 0
	marker := func() int {
		markers++
		mine = tc.publishPos(g, "mallory", "marker", map[string]any{"owner": "mallory", "marker": markers})
		return markers
	}

	t.Run("malformed", func(t *testing.T) {
		for _, tt := range []struct{ name, query string }{
			{"no colon", "resume_user=abc"},
			{"empty", "resume_user="},
			{"empty epoch", "resume_user=:1"},
			{"empty offset", "resume_user=abc:"},
			{"upper-case epoch", "resume_user=ABC:1"},
			{"epoch not hex", "resume_user=xyz:1"},
			{"epoch of 65 digits", "resume_user=" + strings.Repeat("a", 65) + ":1"},
			{"leading zero", "resume_user=abc:01"},
			{"negative offset", "resume_user=abc:-1"},
			{"plus sign", "resume_user=abc:%2B1"},
			{"fractional offset", "resume_user=abc:1.5"},
			{"offset over uint64", "resume_user=abc:18446744073709551616"},
			{"space", "resume_user=abc:%201"},
			{"two colons", "resume_user=abc:1:2"},
			{"NUL byte", "resume_user=abc:1%00"},
			{"given twice", "resume_user=abc:1&resume_user=abc:2"},
			{"resume_all malformed", "resume_all=abc:x"},
			{"resume_all twice", "resume_all=abc:1&resume_all=abc:1"},
			{"one good, one bad", "resume_user=" + mine.Epoch + ":1&resume_all=nothex:0"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, body := rawHandshake(t, g.URL()+"/ws?"+tt.query, mallory)
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Code != "bad_request" || !strings.HasPrefix(e.Error.Message, "resume:") {
					t.Errorf("?%s: HTTP %d %s, want 400 {\"error\":{\"code\":\"bad_request\",\"message\":\"resume: ...\"}}", tt.query, status, body)
				}
			})
		}
	})

	t.Run("unrecoverable", func(t *testing.T) {
		// query builds the handshake's query from mallory's current position
		// (every marker moves it).
		for _, tt := range []struct {
			name  string
			query func(cur seqPosition) string
			lost  []string
		}{
			{"another epoch", func(seqPosition) string { return "resume_user=0123456789abcdef:1" }, []string{"user"}},
			{"a 64-digit epoch", func(seqPosition) string { return "resume_user=" + strings.Repeat("f", 64) + ":0" }, []string{"user"}},
			{"one ahead of the stream", func(cur seqPosition) string { return fmt.Sprintf("resume_user=%s:%d", cur.Epoch, cur.Offset+1) }, []string{"user"}},
			{"far ahead of the stream", func(cur seqPosition) string {
				return fmt.Sprintf("resume_user=%s:%d", cur.Epoch, cur.Offset+1_000_000)
			}, []string{"user"}},
			{"the largest offset", func(cur seqPosition) string { return "resume_user=" + cur.Epoch + ":18446744073709551615" }, []string{"user"}},
			{"the victim's epoch from 0", func(seqPosition) string { return "resume_user=" + victimEpoch + ":0" }, []string{"user"}},
			{"the victim's epoch from 2", func(seqPosition) string { return "resume_user=" + victimEpoch + ":2" }, []string{"user"}},
			{"the broadcast stream's epoch", func(seqPosition) string { return "resume_user=" + allEpoch + ":0" }, []string{"user"}},
			{"the victim's epoch as broadcast", func(seqPosition) string { return "resume_all=" + victimEpoch + ":0" }, []string{"all"}},
			{"the user's epoch as broadcast", func(cur seqPosition) string { return "resume_all=" + cur.Epoch + ":0" }, []string{"all"}},
			{"both forged", func(seqPosition) string {
				return "resume_user=" + victimEpoch + ":1&resume_all=" + victimEpoch + ":1"
			}, []string{"all", "user"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c := dialWS(t, g, mallory, tt.query(mine))
				w := c.welcome(t)
				lost := slices.Sorted(slices.Values(w.Lost))
				if w.Recovered == nil || *w.Recovered || !slices.Equal(lost, tt.lost) {
					t.Errorf("welcome recovered %v lost %v, want recovered false, lost %v", ptrBool(w.Recovered), w.Lost, tt.lost)
				}
				for _, e := range c.eventsUntilMarker(t, marker()) {
					t.Errorf("replayed %s (nothing may be replayed when not recovered)", e)
				}
				c.close()
			})
		}
	})

	// Control: the test sees a replay when there is one, mallory's own.
	t.Run("own position replays", func(t *testing.T) {
		from := mine.Offset - 2
		c := dialWS(t, g, mallory, fmt.Sprintf("resume_user=%s:%d", mine.Epoch, from))
		w := c.welcome(t)
		if w.Recovered == nil || !*w.Recovered || len(w.Lost) != 0 {
			t.Errorf("welcome recovered %v lost %v, want recovered true", ptrBool(w.Recovered), w.Lost)
		}
		got := c.eventsUntilMarker(t, marker())
		if len(got) != 2 {
			t.Fatalf("replayed %d events, want the 2 after offset %d: %s", len(got), from, got)
		}
		for i, e := range got {
			if e.Offset != from+uint64(i)+1 || e.Epoch != mine.Epoch || e.Stream != "user" {
				t.Errorf("replayed #%d at %s/%s/%d, want user/%s/%d", i, e.Stream, e.Epoch, e.Offset, mine.Epoch, from+uint64(i)+1)
			}
		}
		c.close()
	})

	// The connection open through all of this saw mallory's events only,
	// and is still served.
	last := marker()
	for _, e := range bystander.eventsUntilMarker(t, last) {
		if e.Event != "marker" {
			t.Errorf("bystander got %s", e)
		}
	}
}

// createSession creates a session for userID through the server API and
// returns its token (recorded as a secret).
func (tc *testCluster) createSession(userID string) string {
	tc.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	if code := tc.do(http.MethodPost, tc.Gateways[0].URL()+"/api/v1/sessions", tc.apiHeader(), map[string]any{"user_id": userID}, &out); code != http.StatusCreated {
		tc.t.Fatalf("create session for %s: HTTP %d", userID, code)
	}
	tc.addSecret(out.Token, "session token of "+userID)
	return out.Token
}

// publishPos publishes one event to a user through instance g and returns
// the position it got.
func (tc *testCluster) publishPos(g *cluster.Gateway, userID, event string, data any) seqPosition {
	tc.t.Helper()
	var out seqPosition
	body := map[string]any{"target": map[string]any{"user_id": userID}, "event": event, "data": data}
	if code := tc.do(http.MethodPost, g.URL()+"/api/v1/publish", tc.apiHeader(), body, &out); code != http.StatusAccepted || out.Epoch == "" {
		tc.t.Fatalf("publish via %s: HTTP %d, position %+v", g.ID, code, out)
	}
	out.Via = g.ID
	return out
}

// rawHandshake sends a WebSocket handshake with a session token and returns
// the status and body of the answer (the upgrade, if it happens, is closed).
func rawHandshake(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: generous}).Do(req)
	if err != nil {
		t.Fatalf("handshake %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, nil
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// wsClient is a plain Go WebSocket client: a goroutine reads every frame,
// answers pings and hands the rest to frames.
type wsClient struct {
	c      *websocket.Conn
	frames chan wsFrame
	cancel context.CancelFunc
}

type wsFrame struct {
	Type      string               `json:"type"`
	Positions map[string]streamPos `json:"positions"`
	Recovered *bool                `json:"recovered"`
	Lost      []string             `json:"lost"`
	Event     string               `json:"event"`
	Stream    string               `json:"stream"`
	Epoch     string               `json:"epoch"`
	Offset    uint64               `json:"offset"`
	Data      struct {
		Owner  string `json:"owner"`
		Marker int    `json:"marker"`
	} `json:"data"`
	raw string
}

func (f wsFrame) String() string { return f.raw }

func dialWS(t *testing.T, g *cluster.Gateway, token, query string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, generous)
	defer dcancel()
	url := strings.Replace(g.URL(), "http://", "ws://", 1) + "/ws"
	if query != "" {
		url += "?" + query
	}
	c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		cancel()
		t.Fatalf("dial ?%s: %v", query, err)
	}
	w := &wsClient{c: c, frames: make(chan wsFrame, 1024), cancel: cancel}
	go func() {
		defer close(w.frames)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var f wsFrame
			if json.Unmarshal(b, &f) != nil {
				f.Type = "unparsable"
			}
			f.raw = string(b)
			if f.Type == "ping" {
				_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
				continue
			}
			select {
			case w.frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *wsClient) close() {
	w.cancel()
	_ = w.c.CloseNow()
}

func (w *wsClient) next(t *testing.T) wsFrame {
	t.Helper()
	select {
	case f, ok := <-w.frames:
		if !ok {
			t.Fatal("connection closed")
		}
		return f
	case <-time.After(generous):
		t.Fatalf("no frame within %s", generous)
	}
	return wsFrame{}
}

// welcome reads the first frame, which must be the welcome.
func (w *wsClient) welcome(t *testing.T) wsFrame {
	t.Helper()
	f := w.next(t)
	if f.Type != "welcome" {
		t.Fatalf("first frame %s, want the welcome", f)
	}
	return f
}

// eventsUntilMarker reads frames up to the marker event k (published after
// the connection opened, so everything sent before it, replay included, has
// arrived) and returns the event frames before it. A frame of another
// user's event fails the test at once.
func (w *wsClient) eventsUntilMarker(t *testing.T, k int) []wsFrame {
	t.Helper()
	var out []wsFrame
	for {
		f := w.next(t)
		if f.Type != "event" {
			continue
		}
		if f.Data.Owner != "mallory" {
			t.Fatalf("another user's event reached mallory: %s", f)
		}
		if f.Event == "marker" && f.Data.Marker == k {
			return out
		}
		out = append(out, f)
	}
}

func ptrBool(b *bool) string {
	if b == nil {
		return "absent"
	}
	return strconv.FormatBool(*b)
}
