//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// Issue 10's delivery guarantee, end to end: 3 instances behind haproxy,
// Chromium running client-js in an application page, a publisher sending
// the numbers 0..1999 to the user at a steady rate while (a) the instance
// holding the browser's socket is killed with -9, (b) every instance is
// restarted one by one (SIGTERM drain, restart), (c) the client's network
// is cut for 5 s (haproxy killed, then started again on its port). The
// application must be handed every number exactly once, in order, at the
// position the publish got, and 'recovered' after every reconnect.
func TestResumeSequenceThroughFaults(t *testing.T) {
	const (
		total    = 2000
		interval = 20 * time.Millisecond // 50 events/s
		user     = "seq-user"
	)
	tc := startCluster(t, withResumeApp(cluster.Options{Env: map[string]string{
		// The history must hold what a client misses: the 5 s cut alone
		// misses about 250 events at this rate, more than the default 100.
		"HISTORY_SIZE": "5000",
	}}))
	b := startBrowser(t, tc, false)
	app := openResumeApp(t, tc, b, user)
	pub := startSeqPublisher(t, tc, user, interval, 100)
	app.waitSeqCount(50, "first events delivered")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	welcomes := 1
	var replays []string
	// phase runs one fault while the publisher may publish `room` more
	// numbers: it keeps its steady rate through the fault, and pauses only
	// if the fault outlasts the room (a loaded machine), so that the next
	// faults still happen while numbers are being published.
	phase := func(name string, room int, fault func()) {
		t.Helper()
		pub.check(t)
		pub.allow(pub.count() + room)
		start, n0 := time.Now(), pub.count()
		fault()
		t.Logf("%s: done in %s, %d numbers published meanwhile", name, time.Since(start).Round(time.Millisecond), pub.count()-n0)
	}
	// reconnected waits for the app to be connected again after a fault
	// that closed its socket, and records how many events the new socket
	// replayed.
	reconnected := func(what string) settledState {
		t.Helper()
		s := app.settled(welcomes+1, what)
		welcomes = s.Welcomes
		r := app.replayed(s.Sock)
		replays = append(replays, fmt.Sprintf("%s: %d", what, r))
		t.Logf("%s: socket %d on %s, %d events replayed", what, s.Sock, s.Instance, r)
		return s
	}

	// (a) kill -9 of the instance holding the socket, then restart it.
	phase("kill -9", 300, func() {
		cur := app.settled(welcomes, "connected before kill -9")
		victim := tc.Gateway(cur.Instance)
		pub.fence(victim.ID)
		victim.Kill()
		reconnected("after kill -9 of " + victim.ID)
		if err := victim.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tc.LB.WaitUp(ctx, victim.ID); err != nil {
			t.Fatal(err)
		}
		pub.unfence(victim.ID)
	})

	// (b) rolling deploy: every instance drained (SIGTERM) and restarted in
	// turn; the client moves whenever its instance drains.
	for _, g := range tc.Gateways {
		phase("rolling restart of "+g.ID, 300, func() {
			cur := app.settled(welcomes, "connected before draining "+g.ID)
			pub.fence(g.ID)
			if err := g.Terminate(); err != nil {
				t.Fatal(err)
			}
			if err := g.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if err := g.ExitErr(); err != nil {
				t.Errorf("%s after SIGTERM: %v, want exit 0", g.ID, err)
			}
			if cur.Instance == g.ID {
				reconnected("after draining " + g.ID)
			}
			if err := g.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tc.LB.WaitUp(ctx, g.ID); err != nil {
				t.Fatal(err)
			}
			pub.unfence(g.ID)
		})
	}

	// (c) the client's network cut for 5 s: haproxy dies (the kernel closes
	// the browser's connection, new ones are refused) and comes back on
	// the same port. The publisher goes on directly to the instances.
	phase("network cut", 500, func() {
		cur := app.settled(welcomes, "connected before the cut")
		n0 := pub.count()
		tc.LB.Kill()
		app.waitSocketClosed(cur.Sock, "socket closed by the cut")
		cutAt := time.Now()
		pub.waitCount(t, n0+50, "numbers published during the cut")
		// Holding the fault for its length, not waiting for an outcome.
		time.Sleep(time.Until(cutAt.Add(5 * time.Second)))
		if err := tc.LB.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		s := reconnected("after the 5 s network cut")
		if app.replayed(s.Sock) == 0 {
			t.Errorf("after the cut, during which %d numbers were published, the new socket replayed none", pub.count()-n0)
		}
	})

	pub.allow(total)
	pub.waitCount(t, total, "the whole sequence published")
	app.waitLastSeq(total-1, "the last number delivered to the app")
	st := app.state()
	checkExactSequence(t, st, pub.positions())
	if len(st.RecoveryFailed) != 0 {
		t.Errorf("recoveryFailed: %+v", st.RecoveryFailed)
	}
	if len(st.Recovered) != len(st.Welcomes)-1 {
		t.Errorf("%d welcomes but %d 'recovered' events: every reconnect must be recovered", len(st.Welcomes), len(st.Recovered))
	}
	for i, r := range st.Recovered {
		if !slices.Contains(r.Streams, "user") {
			t.Errorf("recovered #%d: streams %v, want the user stream in it", i, r.Streams)
		}
	}
	for _, w := range st.Welcomes[1:] {
		s := app.socket(w.Sock)
		if s.Welcome == nil || s.Welcome.Recovered == nil || !*s.Welcome.Recovered {
			t.Errorf("welcome on socket %d (%s): recovered %v, want true", w.Sock, w.Instance, s.Welcome)
		}
	}
	t.Logf("%d numbers delivered exactly once and in order over %d sockets (%d reconnects, all recovered); replays: %s",
		len(st.Seq), len(st.Welcomes), len(st.Welcomes)-1, strings.Join(replays, "; "))
}

// checkExactSequence checks that the app was handed 0..len(pos)-1, each
// exactly once, in order, each at the position its publish got.
func checkExactSequence(t *testing.T, st appState, pos []seqPosition) {
	t.Helper()
	wrong := 0
	defer reportWrongPositions(t, &wrong)
	for i, e := range st.Seq {
		if e.N != i {
			t.Fatalf("app event #%d is number %d, want %d (%s)", i, e.N, i, describeSeqAround(st.Seq, i))
		}
		if i >= len(pos) {
			t.Fatalf("app got number %d, never published", e.N)
		}
		if p := pos[i]; e.Stream != "user" || e.Epoch != p.Epoch || e.Offset != p.Offset {
			if wrong++; wrong <= 5 {
				t.Errorf("number %d delivered at %s/%s/%d, published at user/%s/%d (via %s)", i, e.Stream, e.Epoch, e.Offset, p.Epoch, p.Offset, p.Via)
			}
		}
	}
	if len(st.Seq) != len(pos) {
		t.Fatalf("app got %d numbers, %d were published", len(st.Seq), len(pos))
	}
}

// reportWrongPositions reports how many events were delivered at another
// position than their publish got, beyond the first few reported.
func reportWrongPositions(t *testing.T, wrong *int) {
	t.Helper()
	if *wrong > 5 {
		t.Errorf("... %d events in all delivered at a position other than their publish's", *wrong)
	}
}

// describeSeqAround shows the numbers around index i, for a failure.
func describeSeqAround(seq []seqEvent, i int) string {
	lo, hi := max(0, i-3), min(len(seq), i+4)
	var b strings.Builder
	for j := lo; j < hi; j++ {
		fmt.Fprintf(&b, "#%d=n%d@%d(sock %d) ", j, seq[j].N, seq[j].Offset, seq[j].Sock)
	}
	return strings.TrimSpace(b.String())
}

// replayed counts the events socket i got that were already in the user's
// stream when it connected (offset at or below its welcome's position):
// the replay of what the client missed.
func (a *appPage) replayed(i int) int {
	a.t.Helper()
	s := a.socket(i)
	if s.Welcome == nil {
		a.t.Fatalf("socket %d has no welcome", i)
	}
	at, ok := s.Welcome.Positions["user"]
	if !ok {
		a.t.Fatalf("welcome on socket %d has no user position: %+v", i, s.Welcome)
	}
	n := 0
	for _, e := range s.Events {
		if e.Stream == "user" && e.Epoch == at.Epoch && e.Offset <= at.Offset {
			n++
		}
	}
	return n
}

// The history below the client's position trimmed, then the history lost
// (its keys deleted: a new epoch), each while the client is cut off and
// the publisher goes on: the reconnect is not recovered, the app is told
// with 'recoveryFailed' before any later event, and every gap in what it
// was handed is one it was told about. A first cut with the history
// intact is recovered: the faults, not the cut, make the difference.
func TestResumeUnrecoverableHistory(t *testing.T) {
	const user = "lost-user"
	tc := startCluster(t, withResumeApp(cluster.Options{Instances: 1, Env: map[string]string{"HISTORY_SIZE": "1000"}}))
	rdb := redis.NewClient(&redis.Options{Addr: tc.Redis.Addr()})
	defer rdb.Close()
	b := startBrowser(t, tc, false)
	app := openResumeApp(t, tc, b, user)
	pub := startSeqPublisher(t, tc, user, 20*time.Millisecond, 1<<30)
	app.waitSeqCount(20, "first events delivered")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Keys of the user's stream (docs/HISTORY.md), under the cluster's
	// REDIS_KEY_PREFIX.
	streamKey := "sge2e:h:{user:" + user + "}"
	metaKey := streamKey + ":m"
	if n, err := rdb.Exists(ctx, streamKey, metaKey).Result(); err != nil || n != 2 {
		t.Fatalf("the user's history keys %s, %s: %d exist (err %v), want both", streamKey, metaKey, n, err)
	}

	// cut kills haproxy, lets the publisher publish 20 numbers the client
	// misses, runs fault, lets 20 more be published and brings haproxy back.
	welcomes := 1
	cut := func(what string, fault func()) {
		t.Helper()
		cur := app.settledAllowing(welcomes, len(app.state().RecoveryFailed), "connected before "+what)
		tc.LB.Kill()
		app.waitSocketClosed(cur.Sock, "socket closed by the cut before "+what)
		pub.waitCount(t, pub.count()+20, "numbers published while cut off, before "+what)
		fault()
		pub.waitCount(t, pub.count()+20, "numbers published while cut off, after "+what)
		if err := tc.LB.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		welcomes++
	}
	// notRecovered checks the welcome of socket i and the app's latest
	// recoveryFailed: the user stream lost, the broadcast stream not.
	notRecovered := func(what string, i int) appMark {
		t.Helper()
		w := app.socket(i).Welcome
		if w == nil || w.Recovered == nil || *w.Recovered || !slices.Equal(w.Lost, []string{"user"}) {
			t.Errorf("%s: welcome %+v, want recovered false, lost [user]", what, w)
		}
		st := app.state()
		if len(st.RecoveryFailed) == 0 {
			t.Fatalf("%s: the app got no recoveryFailed", what)
		}
		rf := st.RecoveryFailed[len(st.RecoveryFailed)-1]
		if !slices.Equal(rf.Lost, []string{"user"}) || rf.Sock != i {
			t.Errorf("%s: recoveryFailed %+v, want lost [user] on socket %d", what, rf, i)
		}
		return rf
	}

	// Control: the history intact.
	cut("the control cut", func() {})
	s := app.settled(welcomes, "recovered after a cut with the history intact")
	if r := app.replayed(s.Sock); r < 20 {
		t.Errorf("control cut: %d events replayed, want at least the 20 published while cut off", r)
	}

	// Trimmed below the client's position: the events it missed are gone.
	cut("the trim", func() {
		n, err := rdb.XTrimMaxLen(ctx, streamKey, 0).Result()
		if err != nil || n == 0 {
			t.Fatalf("XTRIM %s MAXLEN 0: %d entries removed (err %v)", streamKey, n, err)
		}
	})
	s = app.settledAllowing(welcomes, 1, "reconnected after the trim")
	rf := notRecovered("after the trim", s.Sock)
	app.waitSeqCount(rf.At+20, "live events after the trim's recoveryFailed")
	oldEpoch := app.state().Seq[rf.At].Epoch

	// The history lost: both keys deleted, the next publish starts a new
	// epoch from offset 1.
	cut("the history loss", func() {
		n, err := rdb.Del(ctx, streamKey, metaKey).Result()
		if err != nil || n != 2 {
			t.Fatalf("DEL %s %s: %d deleted (err %v), want 2", streamKey, metaKey, n, err)
		}
	})
	s = app.settledAllowing(welcomes, 2, "reconnected after the history loss")
	rf = notRecovered("after the history loss", s.Sock)
	newEpoch := app.socket(s.Sock).Welcome.Positions["user"].Epoch
	if newEpoch == "" || newEpoch == oldEpoch {
		t.Errorf("after the history loss the welcome's user epoch is %q, want a new one (was %q)", newEpoch, oldEpoch)
	}
	app.waitSeqCount(rf.At+20, "live events after the history loss's recoveryFailed")

	last := pub.stop()
	app.waitLastSeq(last-1, "the last number published delivered")
	st := app.state()
	checkNoSilentGap(t, st, pub.positions())
	if len(st.RecoveryFailed) != 2 || len(st.Recovered) != 1 {
		t.Errorf("recovered %d times, recoveryFailed %d times; want 1 and 2: %+v", len(st.Recovered), len(st.RecoveryFailed), st.RecoveryFailed)
	}
	for i, e := range st.Seq {
		after := i >= rf.At
		if after && e.Epoch != newEpoch || !after && e.Epoch != oldEpoch {
			t.Fatalf("number %d (app event #%d) has epoch %s; want %s before the history loss's recoveryFailed (event #%d), %s after", e.N, i, e.Epoch, oldEpoch, rf.At, newEpoch)
		}
	}
	t.Logf("app got %d of %d numbers; the gaps were announced by recoveryFailed at events #%d and #%d", len(st.Seq), last, st.RecoveryFailed[0].At, st.RecoveryFailed[1].At)
}

// checkNoSilentGap checks that the numbers the app got only increase, at
// the positions their publishes got, and that every number skipped was
// announced: a recoveryFailed came between the numbers on either side of
// the gap. It also checks that each recoveryFailed stands for a real gap.
func checkNoSilentGap(t *testing.T, st appState, pos []seqPosition) {
	t.Helper()
	wrong := 0
	defer reportWrongPositions(t, &wrong)
	announced := map[int]bool{}
	for _, rf := range st.RecoveryFailed {
		announced[rf.At] = true
	}
	if len(st.Seq) == 0 {
		t.Fatal("the app got no number")
	}
	if st.Seq[0].N != 0 && !announced[0] {
		t.Errorf("the app's first number is %d, not 0, without a recoveryFailed", st.Seq[0].N)
	}
	for i, e := range st.Seq {
		if e.N >= len(pos) {
			t.Fatalf("app got number %d, never published", e.N)
		}
		if p := pos[e.N]; e.Stream != "user" || e.Epoch != p.Epoch || e.Offset != p.Offset {
			if wrong++; wrong <= 5 {
				t.Errorf("number %d delivered at %s/%s/%d, published at user/%s/%d (via %s)", e.N, e.Stream, e.Epoch, e.Offset, p.Epoch, p.Offset, p.Via)
			}
		}
		if i == 0 {
			continue
		}
		prev := st.Seq[i-1].N
		switch {
		case e.N <= prev:
			t.Fatalf("app event #%d is number %d after %d: a duplicate or out of order (%s)", i, e.N, prev, describeSeqAround(st.Seq, i))
		case e.N != prev+1 && !announced[i]:
			t.Fatalf("silent gap: the app got %d then %d with no recoveryFailed between (%s)", prev, e.N, describeSeqAround(st.Seq, i))
		}
	}
	for _, rf := range st.RecoveryFailed {
		if rf.At == 0 || rf.At >= len(st.Seq) || st.Seq[rf.At].N == st.Seq[rf.At-1].N+1 {
			t.Errorf("recoveryFailed at app event #%d stands for no gap in the numbers (the test lost its point)", rf.At)
		}
	}
}
