package connmgr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// stepDrain runs Shutdown(ctx) on a fake-clock harness with n connections
// and moves the clock to each drain timer as it is set. It checks that the
// k-th timer is set once exactly k connections are closed (the drain closes
// one per slot and waits for the next slot's time), and returns the times
// of the timers, relative to the start of the drain, and Shutdown's error.
func stepDrain(t *testing.T, h *harness, fc *fakeClock, ctx context.Context, n int) ([]time.Duration, error) {
	t.Helper()
	start := fc.Now()
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = h.m.Shutdown(ctx)
	}()
	var slots []time.Duration
	for {
		at, ok := fc.waitTimer(t, done)
		if !ok {
			break
		}
		slots = append(slots, at.Sub(start))
		if got, want := h.m.Stats().Connections, n-len(slots); got != want {
			t.Errorf("waiting for slot %d with %d connections open, want %d", len(slots), got, want)
		}
		fc.AdvanceTo(at)
	}
	return slots, err
}

// Shutdown closes every connection with 1001, one per slot of the drain
// window, waits for everything it started and leaks nothing. The window is
// on a fake clock: the test sees each slot's timer and moves time to it.
func TestShutdownDrainsAndLeaksNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	const n = 8
	window := 800 * time.Millisecond
	h, fc := newFakeClockHarness(t, Config{DrainWindow: window, PingInterval: 1000 * time.Hour})

	statuses := make(chan websocket.StatusCode, n)
	var clients []*client
	for i := range n {
		c := h.dial(fmt.Sprint("u", i), fmt.Sprint("s", i))
		clients = append(clients, c)
		go func() {
			_, status := c.readUntilClose()
			statuses <- status
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	slots, err := stepDrain(t, h, fc, ctx, n)
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The first close is at once, the k-th at k/n of the window.
	var want []time.Duration
	for k := 1; k < n; k++ {
		want = append(want, window*time.Duration(k)/n)
	}
	if !slices.Equal(slots, want) {
		t.Fatalf("drain slots at %v, want %v", slots, want)
	}
	if h.m.Accepting() {
		t.Fatal("Accepting after Shutdown")
	}
	if st := h.m.Stats(); st != (Stats{}) {
		t.Fatalf("Stats after Shutdown = %+v", st)
	}
	select {
	case <-h.runDone:
	case <-time.After(eventually):
		t.Fatal("Run did not return after Shutdown")
	}
	for range n {
		if s := <-statuses; s != websocket.StatusCode(CodeGoingAway) {
			t.Errorf("client saw close %d, want %d", s, CodeGoingAway)
		}
	}
	opens, closes := h.rec.snapshot()
	if opens != n || len(closes) != n {
		t.Fatalf("opens=%d closes=%d, want %d", opens, len(closes), n)
	}
	for _, ev := range closes {
		if ev.code != CodeGoingAway {
			t.Errorf("OnClose code %v, want going_away", ev.code)
		}
	}

	for _, c := range clients {
		_ = c.ws.CloseNow()
	}
	h.srv.Close()
	goleak.VerifyNone(t, ignore)
}

// A Shutdown deadline shorter than the drain window spreads the closes over
// three quarters of the time left instead.
func TestShutdownDeadlineShortensWindow(t *testing.T) {
	const n = 4
	h, fc := newFakeClockHarness(t, Config{DrainWindow: 10 * time.Hour, PingInterval: 1000 * time.Hour})
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		c := h.dial("alice", fmt.Sprint("s", i))
		wg.Go(func() { c.readUntilClose() }) // answers the close handshake
	}
	// A real deadline an hour away: it never fires, the drain reads it.
	ctx, cancel := context.WithDeadline(context.Background(), fc.Now().Add(time.Hour))
	defer cancel()
	slots, err := stepDrain(t, h, fc, ctx, n)
	if err != nil {
		t.Fatalf("Shutdown within its deadline: %v", err)
	}
	window := 45 * time.Minute
	if want := []time.Duration{window / 4, window / 2, window * 3 / 4}; !slices.Equal(slots, want) {
		t.Fatalf("drain slots at %v, want %v (3/4 of the hour left)", slots, want)
	}
	opens, closes := h.rec.snapshot()
	if opens != n || len(closes) != n {
		t.Fatalf("opens=%d closes=%d", opens, len(closes))
	}
}

// When Shutdown's context ends mid-drain, the remaining connections are
// closed at once: the clock never reaches their slots.
func TestShutdownContextEndsMidDrain(t *testing.T) {
	const n = 4
	h, fc := newFakeClockHarness(t, Config{DrainWindow: time.Hour, PingInterval: 1000 * time.Hour})
	statuses := make(chan websocket.StatusCode, n)
	for i := range n {
		c := h.dial("alice", fmt.Sprint("s", i))
		go func() {
			_, status := c.readUntilClose()
			statuses <- status
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Shutdown(ctx) }()
	if _, ok := fc.waitTimer(t, nil); !ok {
		t.Fatal("no drain timer")
	}
	cancel() // the clock never reaches the second slot
	select {
	case err := <-done:
		// Canceled, unless every close handshake finished before Shutdown
		// looked at its context.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown = %v, want context.Canceled or nil", err)
		}
	case <-time.After(eventually):
		t.Fatal("Shutdown did not return after its context ended")
	}
	for range n {
		select {
		case s := <-statuses:
			if s != websocket.StatusCode(CodeGoingAway) {
				t.Errorf("client saw close %d, want %d", s, CodeGoingAway)
			}
		case <-time.After(eventually):
			t.Fatal("a connection was not closed after the drain hurried")
		}
	}
}

func TestServeWhileDraining(t *testing.T) {
	h := newHarness(t, Config{})
	if !h.m.Accepting() {
		t.Fatal("not accepting before Shutdown")
	}
	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if h.m.Accepting() {
		t.Fatal("accepting after Shutdown")
	}
	c := h.dialRaw("alice", "s1")
	if _, status := c.readUntilClose(); status != websocket.StatusCode(CodeGoingAway) {
		t.Fatalf("close status %d, want %d", status, CodeGoingAway)
	}
	select {
	case err := <-h.serveErrs:
		if !errors.Is(err, ErrDraining) {
			t.Fatalf("Serve = %v, want ErrDraining", err)
		}
	case <-time.After(eventually):
		t.Fatal("Serve did not return")
	}
	if opens, _ := h.rec.snapshot(); opens != 0 {
		t.Fatalf("refused connection was opened")
	}
}

func TestServeContextCancel(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.dial("alice", "s1")
	ctx, cancel := context.WithCancel(context.Background())
	// Serve a second connection with a context the test controls.
	done := make(chan error, 1)
	srvConn, cliConn := wsPair(t)
	go func() { done <- h.m.Serve(ctx, srvConn, Info{UserID: "bob", Handle: "s2"}) }()
	cli := &client{t: t, ws: cliConn}
	if f := cli.mustRead(); f.Type != "welcome" {
		t.Fatalf("first frame %+v", f)
	}
	cancel()
	if _, status := cli.readUntilClose(); status != websocket.StatusCode(CodeGoingAway) {
		t.Fatalf("close status %d, want %d", status, CodeGoingAway)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	// The other connection is untouched.
	if n := h.m.SendAll(event("e1")); n != 1 {
		t.Fatalf("SendAll = %d, want 1", n)
	}
	if got := c.eventsUntil("e1"); len(got) != 0 {
		t.Fatalf("unexpected events %v", got)
	}
}

func TestConcurrentFanOutAndClose(t *testing.T) {
	// Pings flow (the clients read them) but never time out, however long
	// a loaded machine takes.
	h := newHarness(t, Config{SendQueue: 256, PingInterval: 50 * time.Millisecond, PongTimeout: 1000 * time.Hour})
	var wg sync.WaitGroup
	statuses := make(chan websocket.StatusCode, 64)
	// Connections dialed while closes run may be closed (4500) before
	// their welcome is written: a close needs no welcome first, so those
	// are dialed without asserting one.
	connect := func(i int) {
		dial := h.dial
		if i >= 20 {
			dial = h.dialRaw
		}
		c := dial(fmt.Sprint("u", i%5), fmt.Sprint("s", i%10))
		wg.Go(func() {
			_, status := c.readUntilClose()
			statuses <- status
		})
	}
	for i := range 20 {
		connect(i)
	}

	var work sync.WaitGroup
	for g := range 4 {
		work.Go(func() {
			frame := event(fmt.Sprint("g", g))
			for i := range 300 {
				switch i % 3 {
				case 0:
					h.m.SendAll(frame)
				case 1:
					h.m.SendUser(fmt.Sprint("u", rand.IntN(5)), frame)
				default:
					h.m.SendSession(fmt.Sprint("s", rand.IntN(10)), frame)
				}
			}
		})
	}
	work.Go(func() {
		for i := range 10 {
			h.m.CloseSession(fmt.Sprint("s", i), CodeRevoked)
			h.m.Sessions()
			h.m.Stats()
		}
	})
	for i := 20; i < 30; i++ {
		connect(i)
	}
	work.Wait()
	// The raw dials return once the handshake is answered, which may be
	// before the server registers the connection: wait for every
	// registration, or Shutdown would refuse the late ones (1001, never
	// opened).
	waitFor(t, "every connection registered", func() bool {
		opens, _ := h.rec.snapshot()
		return opens == 30
	})

	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	close(statuses)
	allowed := []websocket.StatusCode{
		websocket.StatusCode(CodeRevoked),
		websocket.StatusCode(CodeGoingAway),
		websocket.StatusCode(CodeSlowConsumer),
	}
	count := 0
	for s := range statuses {
		count++
		if !slices.Contains(allowed, s) {
			t.Errorf("client saw close %d", s)
		}
	}
	opens, closes := h.rec.snapshot()
	if count != 30 || opens != 30 || len(closes) != 30 {
		t.Fatalf("clients=%d opens=%d closes=%d, want 30", count, opens, len(closes))
	}
	if st := h.m.Stats(); st != (Stats{}) {
		t.Fatalf("Stats after Shutdown = %+v", st)
	}
}
