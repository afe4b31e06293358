package gateway

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

// The watch serves a stream's position only when an event of it came
// within fresh and no bus gap is unchecked.
func TestGapWatchCurrent(t *testing.T) {
	clk := newFakeClock()
	w := gapWatch{now: clk.Now, fresh: time.Hour}
	p := func(e string, o uint64) history.Position { return history.Position{Epoch: e, Offset: o} }
	want := func(stream string, pos history.Position, ok bool) {
		t.Helper()
		got, gotOK := w.current(stream)
		if gotOK != ok || (ok && got != pos) {
			t.Fatalf("current(%s) = %+v, %v; want %+v, %v", stream, got, gotOK, pos, ok)
		}
	}
	want("s", history.Position{}, false) // not watched

	// Known from a read only: the stream may have expired since.
	w.follow("s", p("e1", 5))
	want("s", history.Position{}, false)
	// An event of it: served, at the event's position.
	w.observe("s", p("e1", 6))
	want("s", p("e1", 6), true)
	// An event behind a read that was ahead keeps the read's position and
	// proves the stream alive.
	w.follow("r", p("e1", 9))
	w.observe("r", p("e1", 8))
	want("r", p("e1", 9), true)
	// A new epoch from its start.
	w.observe("s", p("e2", 1))
	want("s", p("e2", 1), true)

	// Half the history's TTL after its last event, no longer.
	clk.Add(time.Hour - time.Nanosecond)
	want("s", p("e2", 1), true)
	clk.Add(time.Nanosecond)
	want("s", history.Position{}, false)
	w.observe("s", p("e2", 2))
	want("s", p("e2", 2), true)

	// A bus gap: nothing is served until the check that started after it
	// is done; a check that started before another gap does not count.
	w.distrust()
	gen := w.generation()
	want("s", history.Position{}, false)
	w.distrust()
	w.trust(gen)
	want("s", history.Position{}, false)
	w.trust(w.generation())
	want("s", p("e2", 2), true)

	w.forget("s")
	want("s", history.Position{}, false)

	// History off (fresh 0): nothing is ever served.
	off := gapWatch{now: clk.Now}
	off.observe("s", p("e1", 1))
	if _, ok := off.current("s"); ok {
		t.Fatal("served with fresh 0")
	}
}

// freshConnectScenario: while events are published to a user and to
// everyone as fast as the publisher's instance takes them, the user keeps
// opening fresh connections (no resume) to sub. Each connection must get
// every event after its welcome's positions, contiguously (an event up to
// them at most as a duplicate the client drops), whether the welcome's positions were read from the history or
// taken from what the bus delivered to sub; most must be the latter.
func freshConnectScenario(t *testing.T, pub, sub *testGateway) {
	const events, conns = 200, 40
	// Positions come from the bus only once it is proven live (its own
	// heartbeat came back).
	waitFor(t, generous, "the bus is live", sub.srv.cluster.Live)
	tok, _ := pub.createSession("erin")
	// The first connection reads the positions (nothing watched yet).
	c := sub.dialToken(tok)
	c.mustNext("welcome")
	_ = c.c.CloseNow()
	busBefore := metricValue(t, sub, "sessiongate_history_reads_total", `op="positions",result="bus"`)

	var wg sync.WaitGroup
	var started atomic.Uint64 // publishes of each stream begun
	wg.Go(func() {
		for i := range events {
			started.Add(1)
			pub.publishTo(map[string]any{"user_id": "erin"}, "u", map[string]int{"n": i})
			pub.publishTo(map[string]any{"all": true}, "a", map[string]int{"n": i})
		}
	})
	t.Cleanup(wg.Wait)
	var lastUser, lastAll uint64
	dups := 0
	for k := range conns + 1 {
		if k == conns {
			wg.Wait() // the last connection opens once every event is out
		}
		c := sub.dialToken(tok)
		w := c.mustNext("welcome")
		if n := started.Load(); w.Positions["user"].Offset > n || w.Positions["all"].Offset > n {
			// A position ahead of the history would skip events unseen.
			t.Fatalf("connection %d: welcome positions %+v with %d events of each stream published", k, w.Positions, n)
		}
		next := map[string]uint64{"user": w.Positions["user"].Offset + 1, "all": w.Positions["all"].Offset + 1}
		epochs := map[string]string{"user": w.Positions["user"].Epoch, "all": w.Positions["all"].Epoch}
		if next["user"] <= lastUser || next["all"] <= lastAll {
			// Positions never go back between connections of one client.
			t.Fatalf("connection %d: welcome positions %+v behind the previous connection's events (user %d, all %d)", k, w.Positions, lastUser, lastAll)
		}
		// A few events on each stream (all of them once the publisher is
		// done), then the next connection.
		for got := 0; got < 6; got++ {
			if next["user"] > events && next["all"] > events {
				break
			}
			f, err := c.next(generous)
			if err != nil {
				t.Fatalf("connection %d: after positions %+v: %v", k, next, err)
			}
			if f.Type != "event" {
				t.Fatalf("connection %d: frame %+v", k, f)
			}
			if f.Epoch == epochs[f.Stream] && f.Offset < next[f.Stream] {
				// A read ahead of the bus: the event that was on its way
				// arrives after the welcome, and the client drops it by its
				// offset (docs/PROTOCOL.md). Never a hole.
				dups++
				continue
			}
			if f.Epoch != epochs[f.Stream] || f.Offset != next[f.Stream] {
				t.Fatalf("connection %d: %s event at %s:%d, want %s:%d (welcome %+v)", k, f.Stream, f.Epoch, f.Offset, epochs[f.Stream], next[f.Stream], w.Positions)
			}
			next[f.Stream]++
		}
		lastUser, lastAll = next["user"]-1, next["all"]-1
		_ = c.c.CloseNow()
	}
	t.Logf("%d connections, %d duplicates on the wire (dropped)", conns, dups)
	// The broadcast stream's position comes from the bus once its first
	// event passed; the user's only while no event of it came between
	// two connections (the watch drops a stream nobody here follows).
	if bus := metricValue(t, sub, "sessiongate_history_reads_total", `op="positions",result="bus"`) - busBefore; bus < conns/2 {
		t.Fatalf("%v positions taken from the bus for %d connections; want at least %d", bus, conns, conns/2)
	}
}

func TestFreshConnectsNeverMissEventsEmbedded(t *testing.T) {
	g := startGateway(t, gwOptions{env: scenarioEnv})
	freshConnectScenario(t, g, g)
}

func TestFreshConnectsNeverMissEventsTwoInstancesOnRedis(t *testing.T) {
	gs := startInstances(t, redistest.Start(t), 2, scenarioEnv)
	freshConnectScenario(t, gs[0], gs[1])
}

// After a pub/sub cut, positions come from the history until the check
// that follows the gap is done: the watch's are behind the events
// published meanwhile. Once the check closed the streams that moved,
// the ones that did not are served from the bus again.
func TestPositionsAfterBusGapComeFromTheHistory(t *testing.T) {
	f := startTwoUsersOnB(t)
	srv, a, b, aliceTok, bobTok, alice, bob := f.srv, f.a, f.b, f.aliceTok, f.bobTok, f.alice, f.bob
	a.publishTo(map[string]any{"user_id": "alice"}, "before", nil)
	alice.mustNext("event")
	a.publishTo(map[string]any{"user_id": "bob"}, "before", nil)
	bob.mustNext("event")
	a.publishTo(map[string]any{"all": true}, "before", nil)
	alice.mustNext("event")
	bob.mustNext("event")
	// Both streams are served from the bus now.
	bus := func() float64 {
		return metricValue(t, b, "sessiongate_history_reads_total", `op="positions",result="bus"`)
	}
	// dial opens a connection of tok on B and returns its welcome and how
	// many of its positions came from the bus.
	dial := func(tok string) (w frame, fromBus float64) {
		b0 := bus()
		c := b.dialToken(tok)
		w = c.mustNext("welcome")
		_ = c.c.CloseNow()
		return w, bus() - b0
	}
	var n float64
	onSteadyBus(t, b, func() { _, n = dial(aliceTok) })
	if n != 2 {
		t.Fatalf("positions from the bus before the gap: %v, want 2", n)
	}

	checks := metricValue(t, b, "sessiongate_event_gap_checks_total", "")
	restore := cutPubSub(t, srv, a, b)
	var missed publishResult
	for i := range 3 {
		missed = a.publishTo(map[string]any{"user_id": "alice"}, "missed", map[string]int{"n": i})
	}
	// The bus is cut: a fresh connection's positions are read, and so
	// include the missed events.
	w, n := dial(aliceTok)
	if got := w.Positions["user"]; got.Epoch != missed.Epoch || got.Offset != missed.Offset {
		t.Fatalf("welcome during the cut: user position %+v, want %s:%d (the history's)", got, missed.Epoch, missed.Offset)
	}
	if n != 0 {
		t.Fatalf("%v positions from the bus while it was cut", n)
	}

	restore()
	if code := alice.closeCode(generous); code != websocket.StatusCode(connmgr.CodeEventsMissed) {
		t.Fatalf("alice's connection closed with %d, want 4010", code)
	}
	waitFor(t, generous, "the check after the gap is done", func() bool {
		return metricValue(t, b, "sessiongate_event_gap_checks_total", "") > checks
	})
	// Bob's stream did not move: served from the bus again. Alice's was
	// dropped from the watch by the check: read, at the history's position.
	onSteadyBus(t, b, func() { _, n = dial(bobTok) })
	if n != 2 {
		t.Fatalf("positions from the bus after the check (bob): %v, want 2", n)
	}
	onSteadyBus(t, b, func() { w, n = dial(aliceTok) })
	if got := w.Positions["user"]; got.Epoch != missed.Epoch || got.Offset != missed.Offset {
		t.Fatalf("welcome after the check: user position %+v, want %s:%d", got, missed.Epoch, missed.Offset)
	}
	if n != 1 {
		t.Fatalf("positions from the bus after the check (alice): %v, want 1 (the broadcast stream's)", n)
	}
}

// onSteadyBus runs f (a handshake on g) until it ran with g's bus trusted
// from before it to after it: live, subscribed, every gap checked, and no
// liveness loss or gap meanwhile. Only then are a welcome's positions
// taken from the bus. A heartbeat held past the liveness timeout (400 ms
// here) by a loaded machine takes them from the history instead, rightly,
// but that is not what the caller asserts, so f runs again. A liveness
// loss or gap is counted before a handshake can see it (Cluster.lost moves
// under the lock Live reads; busGaps is the gap callback's first step).
func onSteadyBus(t *testing.T, g *testGateway, f func()) {
	t.Helper()
	trusted := func() bool {
		g.srv.gaps.mu.Lock()
		defer g.srv.gaps.mu.Unlock()
		return !g.srv.gaps.suspect
	}
	for try := 1; ; try++ {
		waitFor(t, generous, "the bus is trusted", func() bool {
			return g.srv.subscribed.Load() && g.srv.cluster.Live() && trusted()
		})
		lost, gaps := g.srv.cluster.LivenessLost(), g.srv.busGaps.Load()
		f()
		if g.srv.cluster.LivenessLost() == lost && g.srv.busGaps.Load() == gaps {
			return
		}
		if try == 10 {
			t.Fatalf("the bus lapsed during each of %d handshakes", try)
		}
		t.Logf("the bus lapsed during the handshake (try %d): again", try)
	}
}
