package gateway

import (
	"testing"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

func TestGapWatchObserve(t *testing.T) {
	var w gapWatch
	p := func(e string, o uint64) history.Position { return history.Position{Epoch: e, Offset: o} }
	w.follow("s", p("e1", 5))
	w.follow("s", p("e1", 2)) // watched already: the bus's position stays
	steps := []struct {
		pos history.Position
		gap bool
	}{
		{p("e1", 4), false}, // a connection's read was ahead of the bus
		{p("e1", 6), false},
		{p("e1", 6), false}, // again: no gap, no move
		{p("e1", 8), true},  // 7 never came
		{p("e1", 9), false},
		{p("e2", 1), false}, // a new history, from its start
		{p("e3", 4), true},  // a new history whose first three events were missed
	}
	for i, st := range steps {
		if gap, _ := w.observe("s", st.pos); gap != st.gap {
			t.Fatalf("step %d %+v: gap %v, want %v", i, st.pos, gap, st.gap)
		}
	}
	if gap, _ := w.observe("new", p("e9", 40)); gap {
		t.Fatal("the first event of a stream not followed yet is a gap")
	}
}

// The pub/sub subscription of both instances is cut (and resubscribing
// refused) while events are published: stored in the history, never
// delivered live. When the subscription is back, the instance closes the
// connections of the streams that moved meanwhile with 4010, and only
// those; each resumes and gets exactly what it missed.
func TestBusGapClosesMissedStreamsToResume(t *testing.T) {
	f := startTwoUsersOnB(t)
	srv, a, b, aliceTok, alice, bob, w := f.srv, f.a, f.b, f.aliceTok, f.alice, f.bob, f.aliceWelcome
	first := a.publishTo(map[string]any{"user_id": "alice"}, "before", nil)
	alice.mustNext("event")

	checks := metricValue(t, b, "sessiongate_event_gap_checks_total", "")
	restore := cutPubSub(t, srv, a, b)

	var missed []string
	for i := range 3 {
		missed = append(missed, a.publishTo(map[string]any{"user_id": "alice"}, "missed", map[string]int{"n": i}).ID)
	}
	restore()
	if code := alice.closeCode(generous); code != websocket.StatusCode(connmgr.CodeEventsMissed) {
		t.Fatalf("alice's connection closed with %d, want 4010", code)
	}
	waitFor(t, generous, "the check after the gap is done", func() bool {
		return metricValue(t, b, "sessiongate_event_gap_checks_total", "") > checks
	})
	// Bob's stream did not move: his connection is still open and live.
	live := a.publishTo(map[string]any{"user_id": "bob"}, "live", nil)
	if f := bob.mustNext("event"); f.ID != live.ID {
		t.Fatalf("bob got %+v, want %s on the same connection", f, live.ID)
	}
	// Alice resumes and gets exactly the missed events.
	c, rw := b.dialResume(aliceTok, resumeQuery("user", w.Positions["user"].Epoch, first.Offset))
	if rw.Recovered == nil || !*rw.Recovered {
		t.Fatalf("resume after the gap: recovered=%v lost=%v", rw.Recovered, rw.Lost)
	}
	for _, id := range missed {
		if f := c.mustNext("event"); f.ID != id {
			t.Fatalf("replayed %+v, want %s", f, id)
		}
	}
	if v := metricValue(t, b, "sessiongate_event_gaps_total", `cause="bus_gap",stream="user"`); v != 1 {
		t.Fatalf("sessiongate_event_gaps_total{user,bus_gap} = %v, want 1", v)
	}
}

// cutPubSub kills the pub/sub connections of the two instances a and b on
// srv and refuses them SUBSCRIBE until restore is called (or the test
// ends); it returns once both instances saw the cut.
func cutPubSub(t *testing.T, srv *redistest.Server, a, b *testGateway) (restore func()) {
	t.Helper()
	do := func(cmd, want string) {
		t.Helper()
		if reply, err := srv.Do(cmd); err != nil || reply != want {
			t.Fatalf("%s = %q, %v; want %q", cmd, reply, err, want)
		}
	}
	do("ACL SETUSER default -subscribe", "+OK")
	restored := false
	restore = func() {
		if !restored {
			restored = true
			do("ACL SETUSER default +@all", "+OK")
		}
	}
	t.Cleanup(restore)
	do("CLIENT KILL TYPE pubsub", ":2")
	waitFor(t, generous, "both instances see the gap", func() bool { return !a.srv.subscribed.Load() && !b.srv.subscribed.Load() })
	return restore
}

// twoUsersOnB is two instances on one real Redis with a connection of
// alice and one of bob on b, both past their welcome.
type twoUsersOnB struct {
	srv              *redistest.Server
	a, b             *testGateway
	aliceTok, bobTok string
	alice, bob       *wsConn
	aliceWelcome     frame
}

func startTwoUsersOnB(t *testing.T) twoUsersOnB {
	t.Helper()
	f := twoUsersOnB{srv: redistest.Start(t)}
	gs := startInstances(t, f.srv, 2, map[string]string{"WS_PING_INTERVAL": "1h"})
	f.a, f.b = gs[0], gs[1]
	f.aliceTok, _ = f.a.createSession("alice")
	f.bobTok, _ = f.a.createSession("bob")
	f.alice = f.b.dialToken(f.aliceTok)
	f.aliceWelcome = f.alice.mustNext("welcome")
	f.bob = f.b.dialToken(f.bobTok)
	f.bob.mustNext("welcome")
	return f
}
