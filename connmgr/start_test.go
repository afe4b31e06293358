package connmgr

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// startAt makes h upgrade with a start function that signals when it is
// called (the connection is registered by then) and waits for the test to
// hand it the Start to use.
func startAt(h *harness) (called <-chan struct{}, give chan<- Start) {
	c, g := make(chan struct{}), make(chan Start)
	fn := func() Start {
		close(c)
		return <-g
	}
	h.start.Store(&fn)
	return c, g
}

// dialStarting starts opening a connection through UpgradeWith and returns
// a function that waits for it. The handshake completes only once start
// returns: the 101 goes out with the welcome, in one write.
func dialStarting(h *harness, user, handle string) func() *client {
	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws?" + url.Values{"user": {user}, "handle": {handle}}.Encode()
	done := make(chan dialed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, u, nil)
		done <- dialed{ws, err}
	}()
	return func() *client {
		h.t.Helper()
		d := <-done
		if d.err != nil {
			h.t.Fatalf("dial: %v", d.err)
		}
		d.ws.SetReadLimit(1 << 20)
		h.t.Cleanup(func() { _ = d.ws.CloseNow() })
		return &client{t: h.t, ws: d.ws}
	}
}

// A connection made with UpgradeWith gets the welcome with the Start's
// resume outcome, then the replayed frames, then the frames sent to it
// while start ran, minus those Skip names, then live ones: nothing sent
// after registration is lost, nothing is reordered.
func TestUpgradeWithReplayThenHeldThenLive(t *testing.T) {
	h := newHarness(t, Config{})
	called, give := startAt(h)
	dial := dialStarting(h, "alice", "h1")
	<-called
	for _, id := range []string{"held-dup", "held-1", "held-2"} {
		if n := h.m.SendUser("alice", EncodeEvent(id, "e", nil)); n != 1 {
			t.Fatalf("SendUser(%s) reached %d connections while start runs, want 1 (registered)", id, n)
		}
	}
	recovered := true
	give <- Start{
		Positions: map[string]StreamPosition{"user": {Epoch: "ab", Offset: 9}},
		Recovered: &recovered,
		Replay:    [][]byte{EncodeEvent("replay-1", "e", nil), EncodeEvent("replay-2", "e", nil)},
		Skip:      func(f []byte) bool { return strings.Contains(string(f), `"held-dup"`) },
	}
	c := dial()
	w, err := c.read()
	if err != nil || w.Type != "welcome" {
		t.Fatalf("first frame %+v, %v; want the welcome", w, err)
	}
	h.m.SendUser("alice", EncodeEvent("live-1", "e", nil))
	var got []string
	for range 5 {
		f, err := c.read()
		if err != nil {
			t.Fatalf("read after %v: %v", got, err)
		}
		got = append(got, f.ID)
	}
	want := []string{"replay-1", "replay-2", "held-1", "held-2", "live-1"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("frames %v, want %v", got, want)
	}
}

// The welcome carries what start decided.
func TestUpgradeWithWelcome(t *testing.T) {
	h := newHarness(t, Config{})
	called, give := startAt(h)
	dial := dialStarting(h, "alice", "h1")
	<-called
	recovered := false
	give <- Start{Positions: map[string]StreamPosition{"all": {Epoch: "cd", Offset: 3}}, Recovered: &recovered, Lost: []string{"all"}}
	c := dial()
	_, b, err := c.ws.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"positions":{"all":{"epoch":"cd","offset":3}}`, `"recovered":false`, `"lost":["all"]`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("welcome %s lacks %s", b, want)
		}
	}
}

// A connection closed while start runs (a revocation) is closed with its
// code once start returns; nothing of the Start is written.
func TestUpgradeWithClosedWhileStarting(t *testing.T) {
	h := newHarness(t, Config{})
	called, give := startAt(h)
	dial := dialStarting(h, "alice", "h1")
	<-called
	if n := h.m.CloseSession("h1", CodeRevoked); n != 1 {
		t.Fatalf("CloseSession closed %d, want 1", n)
	}
	give <- Start{Replay: [][]byte{EncodeEvent("replay-1", "e", nil)}}
	c := dial()
	_, b, err := c.ws.Read(t.Context())
	if err == nil {
		t.Fatalf("read a frame %s from a connection revoked before its welcome", b)
	}
	if code := websocket.CloseStatus(err); code != websocket.StatusCode(CodeRevoked) {
		t.Fatalf("close %v, want %d", err, CodeRevoked)
	}
}

// Frames held while start runs count against the send queue: a start that
// takes long while events pile up closes the connection as a slow
// consumer instead of buffering without bound.
func TestUpgradeWithHeldFramesBounded(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 4})
	called, give := startAt(h)
	dial := dialStarting(h, "alice", "h1")
	<-called
	for range 10 {
		h.m.SendUser("alice", EncodeEvent("held", "e", nil))
	}
	give <- Start{}
	c := dial()
	var err error
	for err == nil {
		_, _, err = c.ws.Read(t.Context())
	}
	if code := websocket.CloseStatus(err); code != websocket.StatusCode(CodeSlowConsumer) {
		t.Fatalf("close %v, want %d (slow consumer)", err, CodeSlowConsumer)
	}
}
