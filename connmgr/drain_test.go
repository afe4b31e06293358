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

func TestShutdownDrainsAndLeaksNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	const n = 8
	window := 800 * time.Millisecond
	h := newHarness(t, Config{DrainWindow: window})

	type result struct {
		status websocket.StatusCode
		at     time.Time
	}
	results := make(chan result, n)
	var clients []*client
	for i := range n {
		c := h.dial(fmt.Sprint("u", i), fmt.Sprint("s", i))
		clients = append(clients, c)
		go func() {
			_, status := c.readUntilClose()
			results <- result{status, time.Now()}
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	start := time.Now()
	if err := h.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
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

	var times []time.Time
	for range n {
		r := <-results
		if r.status != websocket.StatusCode(CodeGoingAway) {
			t.Errorf("client saw close %d, want %d", r.status, CodeGoingAway)
		}
		times = append(times, r.at)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	// Closes are spread: the last is due at 7/8 of the window after the first.
	if spread := times[n-1].Sub(times[0]); spread < window/2 {
		t.Errorf("closes spread over %v (Shutdown took %v), want at least %v", spread, time.Since(start), window/2)
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

func TestShutdownDeadlineShortensWindow(t *testing.T) {
	h := newHarness(t, Config{DrainWindow: time.Hour})
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range 4 {
		c := h.dial("alice", fmt.Sprint("s", i))
		wg.Go(func() { c.readUntilClose() }) // answers the close handshake
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if err := h.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown within its deadline: %v", err)
	}
	opens, closes := h.rec.snapshot()
	if opens != 4 || len(closes) != 4 {
		t.Fatalf("opens=%d closes=%d", opens, len(closes))
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
	h := newHarness(t, Config{SendQueue: 256, PingInterval: 50 * time.Millisecond, PongTimeout: time.Minute})
	var wg sync.WaitGroup
	statuses := make(chan websocket.StatusCode, 64)
	connect := func(i int) {
		c := h.dial(fmt.Sprint("u", i%5), fmt.Sprint("s", i%10))
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
